"""Paths an attacker puts in a bus message: nothing is written outside the work dir, nothing is read
from a path the message chooses, and every refusal is an event."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from greenai.events import Envelope, new_event
from greenai.events.jobs import ArtifactRef, EventRejected, JobFailed, QuantizeRequested
from greenai.services.quantization.agent import QuantizationAgent
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.model_io import folder_sha256
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
        "event_id": str(uuid.uuid4()), "experiment_id": "exp", "type": "quantize.requested", "version": 1,
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


async def test_sources_outside_the_artifacts_dir_or_off_their_hash_are_refused(
    store: EventStore, tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(work_dir=tmp_path / "work", model_roots=[tiny_model_dir.parent])
    inside = settings.artifacts_dir / "exp" / "earlier"
    shutil.copytree(tiny_model_dir, inside)
    digest = folder_sha256(tiny_model_dir)
    requests = {
        "outside": ArtifactRef(kind="artifact", model="m", path=str(tiny_model_dir), sha256=digest),
        "traversal": ArtifactRef(
            kind="artifact", model="m", path=str(inside / ".." / ".." / ".." / ".."), sha256=digest
        ),
        "wronghash": ArtifactRef(kind="artifact", model="m", path=str(inside), sha256="0" * 64),
        "etc": ArtifactRef(kind="base", model="/etc"),
        "dotdot": ArtifactRef(kind="base", model="../../../../etc"),
        "url": ArtifactRef(kind="base", model="file:///etc/passwd"),
    }
    for name, ref in requests.items():
        data = QuantizeRequested(job_id=name, episode=1, source=ref, method="bnb_int8")
        await store.append(new_event("exp", data, producer="test", key=name))
    events = await serve(store, settings, len(requests))
    failures = {e.data.job_id: e.data for e in events if isinstance(e.data, JobFailed)}
    assert set(failures) == set(requests)
    assert all(f.final and f.reason == "invalid" and f.attempt == 1 for f in failures.values())
    assert "outside the artifacts dir" in failures["outside"].message
    assert "outside the artifacts dir" in failures["traversal"].message
    assert "does not match its recorded hash" in failures["wronghash"].message
    for name in ("etc", "dotdot", "url"):
        assert "not allowed" in failures[name].message or "outside the models dir" in failures[name].message
    written = [p for p in settings.artifacts_dir.rglob("*") if p.is_file() and not p.is_relative_to(inside)]
    assert written == []
