"""Cancelling an experiment: the event only the `cli` role may append, the fold that keeps the first
one of an open run, the coordinator that then decides and requests nothing and completes the
experiment once the jobs it had requested have finished, and `greenai cancel`'s refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from greenai.cli.app import app
from greenai.cli.cancel import NotCancellable, cancel_event, request_cancel
from greenai.cli.listing import experiment_row
from greenai.events import Envelope, new_event
from greenai.events.cancellation import ExperimentCancelled
from greenai.events.experiment import ExperimentCompleted
from greenai.projections.experiment import fold_experiment
from greenai.services.coordinator.agent import Coordinator
from greenai.services.coordinator.cancellation import after_cancel, jobs_in_flight
from greenai.shared.auth import AuthFiles, client_options
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore, PermissionDenied
from greenai.shared.nats_server import EmbeddedNats
from tests import factories as f


def cancelled(exp: str = "e", by: str = "ann", reason: str = "wrong target") -> Envelope:
    return new_event(exp, ExperimentCancelled(requested_by=by, reason=reason), producer="cli", key="cancel")


def mid_episode(exp: str = "e") -> list[Envelope]:
    """Baseline evaluated, episode 1 decided and its step running."""
    return [
        f.run(exp, episodes=3), f.spec(exp), f.staged(exp), f.evaluate_requested(exp, 0),
        f.evaluated(exp, 0, 0.6, 50, 500, 4000), f.decided(exp, 1), f.step_requested(exp, 1),
    ]  # fmt: skip


def test_the_event_is_bounded_and_names_who_asked() -> None:
    with pytest.raises(ValidationError):
        ExperimentCancelled(requested_by="", reason="")
    with pytest.raises(ValidationError):
        ExperimentCancelled(requested_by="ann", reason="x" * 2001)
    with pytest.raises(ValidationError):
        ExperimentCancelled.model_validate({"requested_by": "ann", "kill": "-9"})


def test_the_fold_keeps_the_first_cancellation_of_an_open_run_only() -> None:
    assert fold_experiment("e", [cancelled(), f.run()]).cancelled is None  # before the request: moot
    done = new_event("e", ExperimentCompleted(reason="2 episode(s) run", episodes_run=2), producer="c")
    assert fold_experiment("e", [f.run(), done, cancelled()]).cancelled is None  # after the end: moot
    state = fold_experiment("e", [f.run(), cancelled(by="ann"), cancelled(by="bob")])
    assert state.cancelled is not None and state.cancelled.requested_by == "ann"


def test_running_jobs_finish_then_the_experiment_completes_with_the_reason() -> None:
    events = [*mid_episode(), cancelled()]
    state = fold_experiment("e", events)
    assert jobs_in_flight(state) == ["e-ep1-s0-quantize"] and after_cancel(state) == []
    state = fold_experiment("e", [*events, f.step_completed("e", 1)])  # the step done: no evaluation requested
    assert jobs_in_flight(state) == []
    ((key, data),) = after_cancel(state)
    assert key == "completed" and isinstance(data, ExperimentCompleted)
    assert data.reason == "cancelled by ann: wrong target" and data.episodes_run == 1
    failed = fold_experiment("e", [*events, f.failed("e", "e-ep1-s0-quantize", 1)])  # failed for good: done too
    assert jobs_in_flight(failed) == [] and len(after_cancel(failed)) == 1
    retried = fold_experiment("e", [*events, f.failed("e", "e-ep1-s0-quantize", 1, final=False)])
    assert jobs_in_flight(retried) == ["e-ep1-s0-quantize"]  # it will run again: still in flight


def test_the_listing_says_cancelling_then_cancelled() -> None:
    from greenai.shared.eventstore import History
    from greenai.shared.eventstore_records import StoredEvent

    def row(events: list[Envelope]) -> tuple[str, str]:
        history = History("e", [StoredEvent(i, e) for i, e in enumerate(events, 1)], [], len(events))
        r = experiment_row("e", history)
        return r.status, r.reason

    events = [*mid_episode(), cancelled()]
    assert row(events) == ("cancelling", "cancelled by ann")
    ((_, done),) = after_cancel(fold_experiment("e", [*events, f.step_completed("e", 1)]))
    assert row([*events, f.step_completed("e", 1), new_event("e", done, producer="c")]) == (
        "cancelled", "cancelled by ann: wrong target"
    )  # fmt: skip


async def test_the_coordinator_decides_nothing_more_and_completes_once_the_step_is_done(
    store: EventStore, tmp_path: Path, data_dir: Path
) -> None:
    coordinator = Coordinator(store, Settings(work_dir=tmp_path / "work", data_dir=data_dir))
    for env in [*mid_episode("c1"), cancelled("c1")]:
        await store.append(env)
    assert await coordinator.react("c1")
    assert [e.envelope.type for e in (await store.read("c1")).events][-1] == "experiment.cancelled"  # nothing new
    await store.append(f.step_completed("c1", 1))
    assert await coordinator.react("c1")
    assert await coordinator.react("c1")  # a redelivered trigger appends nothing twice
    types = [e.envelope.type for e in (await store.read("c1")).events]
    assert types[-2:] == ["quantize.completed", "experiment.completed"], types
    assert "evaluate.requested" not in types[types.index("experiment.cancelled") :]


async def test_a_run_cancelled_before_its_spec_never_stages_the_model(
    store: EventStore, tmp_path: Path, data_dir: Path
) -> None:
    coordinator = Coordinator(store, Settings(work_dir=tmp_path / "work", data_dir=data_dir))
    for env in [f.run("c2"), cancelled("c2")]:
        await store.append(env)
    assert await coordinator.react("c2")
    types = [e.envelope.type for e in (await store.read("c2")).events]
    assert types == ["run.requested", "experiment.cancelled", "experiment.completed"]


async def test_greenai_cancel_refuses_what_it_cannot_cancel_and_appends_once(store: EventStore) -> None:
    with pytest.raises(NotCancellable) as unknown:
        await request_cancel(store, "nobody", "ann")
    assert unknown.value.status == 404 and "no experiment 'nobody'" in str(unknown.value)
    assert (await store.read("nobody")).events == []
    for env in mid_episode("c3"):
        await store.append(env)
    assert await request_cancel(store, "c3", "ann", "enough") == ["c3-ep1-s0-quantize"]
    with pytest.raises(NotCancellable, match="already cancelled"):
        await request_cancel(store, "c3", "bob")
    # a second request racing past the check is the same keyed event: one in the log
    state = fold_experiment("c3", mid_episode("c3"))
    await store.append(cancel_event("c3", state, "ann", "enough"))
    assert [e.envelope.type for e in (await store.read("c3")).events].count("experiment.cancelled") == 1
    done = ExperimentCompleted(reason="1 episode(s) run", episodes_run=1)
    await store.append(new_event("c4", done, producer="c"))  # no request before it: nothing runs
    with pytest.raises(NotCancellable, match="no valid run request"):
        await request_cancel(store, "c4", "ann")
    for env in [f.run("c5"), new_event("c5", done, producer="c")]:
        await store.append(env)
    with pytest.raises(NotCancellable, match=r"already completed: 1 episode\(s\) run"):
        await request_cancel(store, "c5", "ann")
    for x in ("c4", "c5"):
        assert "experiment.cancelled" not in [e.envelope.type for e in (await store.read(x)).events]


def test_the_command_refuses_a_bad_id_or_reason_before_connecting() -> None:
    runner = CliRunner()
    answer = runner.invoke(app, ["cancel", "../etc", "--nats-url", "nats://127.0.0.1:1"])
    assert answer.exit_code == 2 and "experiment id" in answer.output
    answer = runner.invoke(app, ["cancel", "ok", "--reason", "x" * 3000, "--nats-url", "nats://127.0.0.1:1"])
    assert answer.exit_code == 2 and "2000" in answer.output


async def test_only_the_cli_role_may_cancel(server: EmbeddedNats, auth: AuthFiles) -> None:
    """The adversary: every other role's cancellation is refused by the server, nothing appended."""
    admin = await EventStore.connect(
        server.url, "GREENAI_EVENTS", name="admin", options=client_options(auth.seed("admin")), manage_stream=True
    )
    try:
        await admin.append(f.run("target"))
        for role in ("coordinator", "quantization", "evaluation", "distillation", "viewer", "cli"):
            store = await EventStore.connect(
                server.url, "GREENAI_EVENTS", name=role, options=client_options(auth.seed(role))
            )
            try:
                env = cancelled("target", by=role)
                if role == "cli":
                    await store.append(env)
                else:
                    with pytest.raises(PermissionDenied):
                        await asyncio.wait_for(store.append(env), 10)
            finally:
                await store.close()
        types = [e.envelope.type for e in (await admin.read("target")).events]
        assert types == ["run.requested", "experiment.cancelled"]
        assert [e.envelope.data.requested_by for e in (await admin.read("target")).events[1:]] == ["cli"]
    finally:
        await admin.close()
