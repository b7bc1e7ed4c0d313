"""Paths an attacker puts in a bus message: nothing is written outside the work dir, nothing is read
from a path the message chooses, and every refusal is an event."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from greenai.events import Envelope, new_event
from greenai.events.artifacts import Artifact, ArtifactFile
from greenai.events.jobs import ArtifactRef, EventRejected, JobFailed, QuantizeRequested
from greenai.services.quantization.agent import QuantizationAgent
from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.runtime import JobWorker


async def serve(store: EventStore, settings: Settings, answers: int) -> list[Envelope]:
    worker = JobWorker(store, QuantizationAgent(settings).spec(), ack_wait_s=30, max_attempts=2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.serve(stop))
    try:
        async with asyncio.timeout(120):
            while True:
                events = (await store.read("exp")).envelopes
                done = [e for e in events if isinstance(e.data, EventRejected | JobFailed)]
                if len(done) >= answers:
                    return events
                await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task


def raw_request(job_id: str, source: dict[str, object]) -> bytes:
    """A request as an attacker writes it: raw JSON, never through our models."""
    return json.dumps({
        "event_id": str(uuid.uuid4()), "experiment_id": "exp", "type": "quantize.requested", "version": 2,
        "time": datetime.now(UTC).isoformat(), "producer": "attacker",
        "data": {"job_id": job_id, "episode": 1, "source": source, "method": "bnb_int8", "params": {}},
    }).encode()  # fmt: skip


async def test_a_traversing_job_id_is_refused_and_nothing_is_written(
    store: EventStore, tiny_model_dir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "a" / "b" / "c" / "work"
    settings = Settings(work_dir=work, model_roots=[tiny_model_dir.parent])
    victim = tmp_path / "victim"
    depth = len(work.relative_to(tmp_path).parts) + 2  # artifacts/exp under the work dir
    job_id = "/".join([".."] * depth) + "/victim"
    base = {"kind": "base", "model": str(tiny_model_dir)}
    await store.js.publish("greenai.evt.exp.quantize.requested", raw_request(job_id, base), stream=store.stream)
    events = await serve(store, settings, 1)
    (rejected,) = [e.data for e in events if isinstance(e.data, EventRejected)]
    assert "job id" in rejected.reason
    assert not victim.exists()
    assert not any(p.is_file() for p in tmp_path.rglob("*")), "nothing may be written anywhere"


async def test_sources_the_store_does_not_vouch_for_are_refused_and_nothing_is_loaded(
    store: EventStore, tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(work_dir=tmp_path / "work", model_roots=[tiny_model_dir.parent])
    artifacts = ArtifactStore(store.js, settings.artifact_bucket, tmp_path / "uploader-cache")
    folder = tmp_path / "small"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "weights.bin").write_bytes(b"honest bytes")
    real = await artifacts.put_folder(folder)
    # a writer replaces the object's content: its name (the sha256 of the honest bytes) no longer matches
    weights = next(f for f in real.files if f.path == "weights.bin")
    obs = await store.js.object_store(settings.artifact_bucket)
    await obs.put(weights.sha256, b"evil bytes")
    missing = Artifact.from_files(
        [ArtifactFile(path="config.json", bytes=2, sha256="1" * 64)], settings.artifact_bucket
    )
    requests = {
        "tampered": ArtifactRef(kind="artifact", model="m", artifact=real),
        "missing": ArtifactRef(kind="artifact", model="m", artifact=missing),
        "legacy": ArtifactRef(kind="artifact", model="m", artifact=Artifact(sha256="2" * 64, bucket="", bytes=0)),
        "etc": ArtifactRef(kind="base", model="/etc"),
        "dotdot": ArtifactRef(kind="base", model="../../../../etc"),
        "url": ArtifactRef(kind="base", model="file:///etc/passwd"),
    }
    for name, ref in requests.items():
        data = QuantizeRequested(job_id=name, episode=1, source=ref, method="bnb_int8")
        await store.append(new_event("exp", data, producer="test", key=name))
    # and a manifest that walks out of the folder never even validates as an event
    walker = {"path": "../../etc/passwd", "bytes": 1, "sha256": "4" * 64}
    manifest = {"sha256": "3" * 64, "bucket": "b", "bytes": 1, "files": [walker]}
    body = raw_request("traversal", {"kind": "artifact", "model": "m", "artifact": manifest})
    await store.js.publish("greenai.evt.exp.quantize.requested", body, stream=store.stream)
    events = await serve(store, settings, len(requests) + 1)
    failures = {e.data.job_id: e.data for e in events if isinstance(e.data, JobFailed)}
    assert set(failures) == set(requests)
    assert all(f.final and f.reason == "invalid" and f.attempt == 1 for f in failures.values())
    assert (
        "could not be fetched whole" in failures["tampered"].message or "manifest says" in failures["tampered"].message
    )
    assert "not in bucket" in failures["missing"].message
    assert "before artifacts travelled over NATS" in failures["legacy"].message
    for name in ("etc", "dotdot", "url"):
        assert "not allowed" in failures[name].message or "outside the models dir" in failures[name].message
    (rejected,) = [e.data for e in events if isinstance(e.data, EventRejected)]
    assert "'..'" in rejected.reason
    cache = settings.artifact_cache_dir
    assert not cache.exists() or not any(p.is_file() and p.suffix != ".lock" for p in cache.rglob("*"))
