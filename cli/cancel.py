"""`greenai cancel <experiment>`: ask the coordinator to stop an experiment, as the `cli` role.

The request is an `experiment.cancelled` event; the coordinator decides nothing more for the
experiment and requests no further job, lets the jobs already running finish, then completes it with
the cancellation as the reason. The dashboard's cancel button goes through the same checks and words.
"""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated

import typer

from greenai.cli.log_access import existing_bus
from greenai.cli.options import DataDir, NatsUrl, WorkDir, console, settings_or_exit
from greenai.events import Envelope, new_event
from greenai.events.cancellation import ExperimentCancelled
from greenai.events.subjects import check_experiment_id
from greenai.projections.experiment import ExperimentState, fold_experiment
from greenai.services.coordinator.cancellation import jobs_in_flight
from greenai.shared.bus import open_store
from greenai.shared.eventstore import EventStore
from greenai.shared.logging import configure_logging


class NotCancellable(ValueError):
    """Nothing to cancel; the message says why. `status` is the HTTP code the dashboard answers with."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def check_cancellable(experiment: str, state: ExperimentState | None) -> ExperimentState:
    """The experiment's state when it may be cancelled, else `NotCancellable` with the reason."""
    if state is None or state.events == 0:
        raise NotCancellable(f"no experiment {experiment!r} in the log", 404)
    if state.run is None:
        raise NotCancellable(f"experiment {experiment!r} has no valid run request: nothing runs to cancel")
    if state.failed is not None:
        raise NotCancellable(f"experiment {experiment!r} already failed: {state.failed.reason}")
    if state.completed is not None:
        raise NotCancellable(f"experiment {experiment!r} already completed: {state.completed.reason}")
    if state.cancelled is not None:
        raise NotCancellable(
            f"experiment {experiment!r} is already cancelled (by {state.cancelled.requested_by}); "
            "it completes once the jobs it had requested have finished"
        )
    return state


def cancel_event(
    experiment: str, state: ExperimentState | None, requested_by: str, reason: str, producer: str = "cli"
) -> Envelope:
    """The cancellation to append, keyed so a repeated request (terminal or page) is one event in the log."""
    check_cancellable(experiment, state)
    data = ExperimentCancelled(requested_by=requested_by, reason=reason)
    return new_event(experiment, data, producer=producer, key="cancel")


async def request_cancel(store: EventStore, experiment: str, requested_by: str, reason: str = "") -> list[str]:
    """Append the cancellation; return the jobs still running (they finish). `NotCancellable` if moot."""
    history = await store.read(experiment)
    # a body naming another experiment under this subject is not this experiment's (as the coordinator reads it)
    state = fold_experiment(experiment, [e for e in history.envelopes if e.experiment_id == experiment])
    await store.append(cancel_event(experiment, state, requested_by, reason))
    return jobs_in_flight(state)


def cancel(
    experiment: Annotated[str, typer.Argument(help="The experiment to stop.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the log; 2000 characters at most).")] = "",
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Cancel an experiment: no new decisions or jobs; the jobs running now finish, then it completes."""
    try:
        check_experiment_id(experiment)
        ExperimentCancelled(requested_by="x", reason=reason)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    settings = settings_or_exit(data_dir, work_dir, nats_url)
    configure_logging("console", "warning")
    bus = existing_bus(settings, allow_start=True)

    async def go() -> int:
        store = await open_store(settings, bus.url, "cli-cancel", "cli")
        try:
            running = await request_cancel(store, experiment, getpass.getuser(), reason)
        except NotCancellable as exc:
            console.print(f"[red]{exc}[/red]")
            return 1
        finally:
            await store.close()
        jobs = f"{len(running)} job(s) still running will finish ({', '.join(running)})" if running else "nothing runs"
        console.print(f"experiment [bold]{experiment}[/bold]: cancellation requested; {jobs}, then it completes")
        return 0

    try:
        code = asyncio.run(go())
    finally:
        bus.close()
    raise typer.Exit(code)
