"""The quantization agent's job handling against a real JetStream: refusals are clear events,
nothing is lost, and the agent goes on serving."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from greenai.events import Envelope, new_event
from greenai.events.jobs import ArtifactRef, JobFailed, QuantizeRequested
from greenai.events.results import QuantizeCompleted
from greenai.services.quantization.agent import QuantizationAgent
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.runtime import JobWorker


def request(model: Path, n: int, method: str, params: dict[str, Any]) -> Envelope:
    data = QuantizeRequested(
        job_id=f"job{n}",
        episode=n,
        source=ArtifactRef(kind="base", model=str(model)),
        method=method,
        params=params,
    )
    return new_event("exp", data, producer="test", key=f"q{n}")


async def serve_until_done(store: EventStore, settings: Settings, jobs: int) -> list[Envelope]:
    worker = JobWorker(store, QuantizationAgent(settings).spec(), ack_wait_s=30, max_attempts=2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.serve(stop))
    try:
        async with asyncio.timeout(240):
            while True:
                events = (await store.read("exp")).envelopes
                if (
                    len(
                        [
                            e
                            for e in events
                            if e.type == "quantize.completed" or (isinstance(e.data, JobFailed) and e.data.final)
                        ]
                    )
                    >= jobs
                ):
                    return events
                await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task


async def test_refusals_are_events_and_good_jobs_still_run(
    store: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(work_dir=tmp_path, data_dir=data_dir, model_roots=[tiny_model_dir.parent])
    await store.append(request(tiny_model_dir, 1, "autoround", {"bits": 5}))
    await store.append(request(tiny_model_dir, 2, "magic", {}))
    await store.append(request(tiny_model_dir, 3, "gptq", {"group_size": 100}))
    await store.append(request(tiny_model_dir, 4, "bnb_int8", {}))
    events = await serve_until_done(store, settings, 4)

    failures = {e.data.job_id: e.data for e in events if isinstance(e.data, JobFailed)}
    assert set(failures) == {"job1", "job2", "job3"}
    assert all(f.final and f.reason == "invalid" and f.attempt == 1 for f in failures.values())
    assert "bits" in failures["job1"].message
    assert "unknown quantization method 'magic'" in failures["job2"].message
    assert "group size 100 does not divide" in failures["job3"].message

    (done,) = [e.data for e in events if isinstance(e.data, QuantizeCompleted)]
    assert done.job_id == "job4" and done.method == "bnb_int8"
    assert done.params == {"threshold": 6.0}  # validated, defaults made explicit
    # the artifact went into the object store before the event, and this agent keeps it as its cache's copy
    cached = settings.artifact_cache_dir / done.artifact.sha256
    assert cached.is_dir() and done.artifact.in_store
    assert {f.path for f in done.artifact.files} >= {"config.json", "model.safetensors"}
    assert not (tmp_path / "artifacts" / "exp" / "job4").exists()  # the store is the record, not the work dir
    assert not any(str(tmp_path) in line for line in [done.model_dump_json()])
    assert done.bits_per_weight is not None and 0 < done.bits_per_weight < 32
    assert done.wall_s > 0 and done.peak_rss_mb > 100


async def test_a_job_this_machine_cannot_hold_is_refused_as_unsupported(
    store: EventStore, tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(work_dir=tmp_path, memory_limit_mb=1, model_roots=[tiny_model_dir.parent])
    await store.append(request(tiny_model_dir, 1, "autoround", {"bits": 4}))
    events = await serve_until_done(store, settings, 1)
    (failure,) = [e.data for e in events if isinstance(e.data, JobFailed)]
    assert failure.reason == "unsupported" and "GiB available" in failure.message
