"""The job runtime against a real JetStream: acks, retries, final failures, rejects, sharing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from greenai.events import Envelope, EventData, new_event
from greenai.events.artifacts import Artifact, ArtifactFile
from greenai.events.jobs import ArtifactRef, EventRejected, JobFailed, JobStarted, QuantizeRequested
from greenai.events.results import QuantizeCompleted
from greenai.shared.eventstore import EventStore
from greenai.shared.jobs import JobError
from greenai.shared.runtime import JobSpec, JobWorker


def request(exp: str, n: int = 1) -> Envelope:
    data = QuantizeRequested(job_id=f"{exp}-job{n}", episode=n, source=ArtifactRef(kind="base", model="m"), method="x")
    return new_event(exp, data, producer="test", key=f"req{n}")


def completed(job: QuantizeRequested) -> QuantizeCompleted:
    return QuantizeCompleted(
        job_id=job.job_id, episode=job.episode, method="x", params={},
        artifact=Artifact.from_files([ArtifactFile(path="w", bytes=1, sha256="0" * 64)], "b"),
        bits_per_weight=None, wall_s=0.0, peak_rss_mb=0.0,
    )  # fmt: skip


class Script:
    """A handler whose behaviour per call is scripted: 'ok', 'job_error', 'boom' (transient),
    'bug' (deterministic), 'huge' (a result over the event size limit), or a delay."""

    def __init__(self, *plan: str, delay: float = 0.0) -> None:
        self.plan = list(plan)
        self.calls: list[str] = []
        self.delay = delay

    async def __call__(self, env: Envelope) -> Sequence[EventData]:
        job = env.data
        assert isinstance(job, QuantizeRequested)
        self.calls.append(job.job_id)
        await asyncio.sleep(self.delay)
        step = self.plan.pop(0) if self.plan else "ok"
        if step == "job_error":
            raise JobError("bits=5 is not supported", "invalid")
        if step == "boom":
            raise ConnectionError("transient trouble")
        if step == "bug":
            raise KeyError("no such parameter")
        if step == "huge":
            return [completed(job).model_copy(update={"params": {"x": "y" * 300_000}})]
        return [completed(job)]


def worker(
    store: EventStore, handler: Script, *, max_attempts: int = 3, ack_wait: float = 2.0, name: str = "w"
) -> JobWorker:
    spec = JobSpec("quantization", "quantize.requested", "quantize", handler, ("quantize.completed",))
    return JobWorker(store, spec, ack_wait_s=ack_wait, max_attempts=max_attempts, instance=name, retry_delay_s=0.1)


async def run_until(
    store: EventStore, workers: list[JobWorker], exp: str, done: int, timeout: float = 20.0
) -> list[Envelope]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.serve(stop)) for w in workers]
    try:
        async with asyncio.timeout(timeout):
            while True:
                events = (await store.read(exp)).envelopes
                finished = [
                    e
                    for e in events
                    if e.type == "quantize.completed" or (isinstance(e.data, JobFailed) and e.data.final)
                ]
                if len(finished) >= done:
                    await asyncio.sleep(0.3)  # let anything wrongly extra show up
                    return (await store.read(exp)).envelopes
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def types(events: list[Envelope]) -> list[str]:
    return [e.type for e in events]


async def test_a_job_runs_once_and_its_result_points_at_the_request(store: EventStore) -> None:
    handler = Script("ok")
    req = request("e")
    await store.append(req)
    events = await run_until(store, [worker(store, handler)], "e", 1)
    assert types(events) == ["quantize.requested", "job.started", "quantize.completed"]
    assert events[2].causation_id == req.event_id
    assert handler.calls == ["e-job1"]


async def test_a_malformed_message_is_recorded_and_the_agent_keeps_serving(store: EventStore) -> None:
    handler = Script("ok")
    await store.js.publish("greenai.evt.e.quantize.requested", b'{"type": "quantize.requested"}', stream=store.stream)
    await store.append(request("e"))
    events = await run_until(store, [worker(store, handler)], "e", 1)
    rejected = [e.data for e in events if isinstance(e.data, EventRejected)]
    assert len(rejected) == 1
    assert rejected[0].subject == "greenai.evt.e.quantize.requested"
    assert "version" in rejected[0].reason
    assert handler.calls == ["e-job1"]


async def test_a_job_error_fails_at_once_without_retrying(store: EventStore) -> None:
    handler = Script("job_error")
    await store.append(request("e"))
    events = await run_until(store, [worker(store, handler)], "e", 1)
    (failure,) = [e.data for e in events if isinstance(e.data, JobFailed)]
    assert failure.final and failure.reason == "invalid" and "bits=5" in failure.message
    await asyncio.sleep(0.5)
    assert handler.calls == ["e-job1"]


async def test_transient_errors_are_retried_then_the_job_completes(store: EventStore) -> None:
    handler = Script("boom", "boom", "ok")
    await store.append(request("e"))
    events = await run_until(store, [worker(store, handler)], "e", 1)
    failures = [e.data for e in events if isinstance(e.data, JobFailed)]
    assert [(f.attempt, f.final) for f in failures] == [(1, False), (2, False)]
    assert types(events).count("quantize.completed") == 1
    assert [e.data.attempt for e in events if isinstance(e.data, JobStarted)] == [1, 2, 3]


async def test_attempts_are_bounded(store: EventStore) -> None:
    handler = Script("boom", "boom", "boom", "boom")
    await store.append(request("e"))
    events = await run_until(store, [worker(store, handler, max_attempts=2)], "e", 1)
    failures = [e.data for e in events if isinstance(e.data, JobFailed)]
    assert [(f.attempt, f.final) for f in failures] == [(1, False), (2, True)]
    assert len(handler.calls) == 2


async def test_a_redelivered_job_whose_result_is_logged_is_not_run_again(store: EventStore) -> None:
    handler = Script("ok")
    req = request("e")
    await store.append(req)
    data = req.data
    assert isinstance(data, QuantizeRequested)
    await store.append(new_event("e", completed(data), producer="earlier", cause=req))
    w = worker(store, handler)
    stop = asyncio.Event()
    task = asyncio.create_task(w.serve(stop))
    await asyncio.sleep(1.5)
    stop.set()
    await task
    assert handler.calls == []
    assert types((await store.read("e")).envelopes) == ["quantize.requested", "quantize.completed"]


async def test_instances_share_the_work_and_each_job_runs_once(store: EventStore) -> None:
    handlers = [Script(delay=0.2), Script(delay=0.2)]
    for n in range(1, 9):
        await store.append(request("e", n))
    events = await run_until(store, [worker(store, h, name=f"w{i}") for i, h in enumerate(handlers)], "e", 8)
    done = Counter(e.data.job_id for e in events if isinstance(e.data, QuantizeCompleted))
    assert sorted(done) == sorted(f"e-job{n}" for n in range(1, 9))
    assert set(done.values()) == {1}
    assert all(h.calls for h in handlers), "both instances took jobs"


async def test_a_deterministic_exception_fails_at_once_without_retrying(store: EventStore) -> None:
    handler = Script("bug", "ok")
    await store.append(request("e"))
    events = await run_until(store, [worker(store, handler)], "e", 1)
    (failure,) = [e.data for e in events if isinstance(e.data, JobFailed)]
    assert failure.final and failure.reason == "error" and failure.error_type == "KeyError"
    await asyncio.sleep(0.5)
    assert handler.calls == ["e-job1"]


def test_the_retry_rule() -> None:
    from concurrent.futures.process import BrokenProcessPool

    from greenai.shared.jobs import JobTimeout
    from greenai.shared.runtime import is_transient

    for exc in (ConnectionError("x"), OSError("disk"), MemoryError(), BrokenProcessPool("killed"), TimeoutError()):
        assert is_transient(exc), exc
    for exc in (ValueError("x"), TypeError("x"), KeyError("x"), AttributeError("x"), RuntimeError("shape"),
                PermissionError("x"), JobTimeout(1.0), JobError("bad")):  # fmt: skip
        assert not is_transient(exc), exc
    assert is_transient(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))


async def test_a_result_too_large_for_the_log_fails_the_job_as_invalid(store: EventStore) -> None:
    handler = Script("huge")
    await store.append(request("e"))
    events = await run_until(store, [worker(store, handler)], "e", 1)
    (failure,) = [e.data for e in events if isinstance(e.data, JobFailed)]
    assert failure.final and failure.reason == "invalid" and failure.error_type == "EventTooLarge"
    assert "quantize.completed" not in types(events)
