"""The evaluation agent against a real JetStream: results are cached by (artifact hash, task,
subset, seed), so a repeated job never recomputes; a bad request is a clear failure event."""

from __future__ import annotations

import asyncio
from pathlib import Path

from greenai.events import Envelope, new_event
from greenai.events.jobs import ArtifactRef, EvaluateRequested, JobFailed
from greenai.events.results import EvaluateCompleted
from greenai.services.evaluation.agent import EvaluationAgent
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.runtime import JobWorker


def request(model: Path, n: int, limit: int, task: str = "arc_easy", **more: object) -> Envelope:
    data = EvaluateRequested(
        job_id=f"eval{n}", episode=n, target=ArtifactRef(kind="base", model=str(model)), task=task, limit=limit,
        **more,  # type: ignore[arg-type]
    )  # fmt: skip
    return new_event("exp", data, producer="test", key=f"e{n}")


async def test_a_repeated_evaluation_comes_from_the_cache(
    store: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(work_dir=tmp_path, data_dir=data_dir, model_roots=[tiny_model_dir.parent])
    for n, limit, task in ((1, 3, "arc_easy"), (2, 3, "arc_easy"), (3, 2, "arc_easy"), (4, 2, "no_such_benchmark")):
        await store.append(request(tiny_model_dir, n, limit, task))
    await store.append(request(tiny_model_dir, 5, 2, secondary=["wikitext2"], purpose="promotion"))
    await store.append(request(tiny_model_dir, 6, 2, "wikitext2"))
    worker = JobWorker(store, EvaluationAgent(settings).spec(), ack_wait_s=30, max_attempts=1)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.serve(stop))
    try:
        async with asyncio.timeout(600):  # four evaluations in child processes: minutes on a loaded machine
            while True:
                events = (await store.read("exp")).envelopes
                if sum(1 for e in events if e.type in ("evaluate.completed", "job.failed")) >= 6:
                    break
                await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    results = {e.data.job_id: e.data for e in events if isinstance(e.data, EvaluateCompleted)}
    first, again, other = results["eval1"], results["eval2"], results["eval3"]
    assert not first.cached and again.cached and not other.cached
    assert again.accuracy == first.accuracy and again.latency == first.latency and again.episode == 2
    assert first.artifact_sha256 and first.artifact_sha256 == again.artifact_sha256
    assert other.n == 2
    failures = {e.data.job_id: e.data for e in events if isinstance(e.data, JobFailed)}
    assert failures["eval4"].reason == "invalid" and "unknown benchmark" in failures["eval4"].message
    assert failures["eval6"].reason == "invalid" and "secondary benchmark only" in failures["eval6"].message
    promoted = results["eval5"]
    assert promoted.purpose == "promotion" and [x.task for x in promoted.secondary] == ["wikitext2"]
    assert promoted.secondary[0].value > 1 and not promoted.secondary[0].higher_is_better
