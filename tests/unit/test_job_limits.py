"""Job time limits (a hung child is killed with what it started) and the coordinator's poison triggers."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Sequence

from greenai.events import Envelope, EventData, new_event
from greenai.events.experiment import RunRequested
from greenai.events.jobs import EventRejected, JobFailed
from greenai.services.coordinator.agent import MAX_DELIVER, Coordinator
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.jobs import JobTimeout, run_in_child
from greenai.shared.runtime import JobSpec, JobWorker
from tests.unit.test_runtime import request, run_until


def _running(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


async def test_a_hung_child_and_what_it_started_are_killed_at_the_time_limit() -> None:
    marker = "61.2345"
    start = time.monotonic()
    job = asyncio.create_task(run_in_child(subprocess.run, ["sleep", marker], timeout_s=12.0))
    while not _running(f"sleep {marker}"):  # the grandchild is up (after the child imported torch)
        assert not job.done() and time.monotonic() - start < 12
        await asyncio.sleep(0.2)
    try:
        await job
        raise AssertionError("the child should have been stopped")
    except JobTimeout as exc:
        assert exc.reason == "timeout" and "12 s" in exc.message
    assert 11.5 < time.monotonic() - start < 20
    await asyncio.sleep(0.3)
    assert not _running(f"sleep {marker}"), "the grandchild outlived the timeout"


async def test_a_job_whose_child_hangs_fails_for_good_with_reason_timeout(store: EventStore) -> None:
    calls: list[str] = []

    async def hangs(env: Envelope) -> Sequence[EventData]:
        calls.append(env.event_id.hex)
        await run_in_child(time.sleep, 60)  # the limit comes from the runtime
        return []

    spec = JobSpec("quantization", "quantize.requested", "quantize", hangs, ("quantize.completed",))
    w = JobWorker(store, spec, ack_wait_s=2.0, max_attempts=3, instance="w", job_timeout_s=1.0)
    await store.append(request("t"))
    events = await run_until(store, [w], "t", 1, timeout=30)
    (failure,) = [e.data for e in events if isinstance(e.data, JobFailed)]
    assert failure.final and failure.reason == "timeout" and failure.error_type == "JobTimeout"
    assert len(calls) == 1


class BrokenCoordinator(Coordinator):
    """The real coordinator with a bug in `react` for one experiment: a poison trigger."""

    async def react(self, experiment_id: str, trigger: Envelope | None = None) -> bool:
        if experiment_id == "poison":
            raise ZeroDivisionError("a bug")
        return await super().react(experiment_id, trigger)


async def test_a_poison_trigger_becomes_event_rejected_and_the_coordinator_keeps_serving(
    store: EventStore, tmp_path: object
) -> None:
    coordinator = BrokenCoordinator(store, Settings(work_dir=tmp_path, ack_wait_s=5.0))
    coordinator.retry_delay_s = 0.05
    stop = asyncio.Event()
    task = asyncio.create_task(coordinator.serve(stop))
    run = RunRequested(model="m", dataset="arc_easy", episodes=1)
    await store.append(new_event("poison", run, producer="t", key="run"))
    try:
        async with asyncio.timeout(30):
            while True:
                events = (await store.read("poison")).envelopes
                rejected = [e.data for e in events if isinstance(e.data, EventRejected)]
                if rejected:
                    break
                assert not task.done(), task
                await asyncio.sleep(0.2)
        (one,) = rejected
        assert f"failed on this trigger {MAX_DELIVER} times" in one.reason and "ZeroDivisionError" in one.reason
        assert one.agent == "coordinator" and one.subject.endswith(".run.requested")
        await asyncio.sleep(1.0)  # acked: not delivered again, no second rejection
        assert len([e for e in (await store.read("poison")).envelopes if e.type == "event.rejected"]) == 1
        assert not task.done()
    finally:
        stop.set()
        await task
