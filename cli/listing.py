"""What `greenai experiments` says about each experiment: its status and, when it ended badly, why.

A run request that never validated leaves only rejections behind: such an experiment is `rejected`
(never `running`). Messages that name no valid experiment are kept under `_system`; the listing shows
them as one row, `rejected (unaddressable)`, with their count and the latest reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenai.events.experiment import ExperimentFailed
from greenai.events.jobs import EventRejected
from greenai.projections.experiment import fold_experiment
from greenai.shared.eventstore import History

REASON_CHARS = 160


@dataclass(frozen=True)
class Row:
    experiment: str
    model: str
    dataset: str
    status: str
    episodes: str
    events: str
    reason: str


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def _last_rejection(history: History) -> str:
    rejected = [e.envelope.data for e in history.events if isinstance(e.envelope.data, EventRejected)]
    if rejected:
        return rejected[-1].reason
    return history.unreadable[-1].reason if history.unreadable else ""


def experiment_row(experiment: str, history: History) -> Row:
    """One experiment's row. Events whose body names another experiment than their subject are not
    this experiment's: they count as rejected, as the coordinator treats them."""
    own = [e for e in history.envelopes if e.experiment_id == experiment]
    state = fold_experiment(experiment, own)
    run = state.run
    foreign = len(history.envelopes) - len(own) + len(history.unreadable)
    if run is None:
        failed = next((e.data for e in own if isinstance(e.data, ExperimentFailed)), None)
        status, reason = "rejected", failed.reason if failed else _last_rejection(history) or "no valid run request"
    elif state.failed is not None:
        status, reason = "failed", state.failed.reason
    elif state.completed is not None:
        status = "cancelled" if state.cancelled is not None else "completed"
        reason = state.completed.reason
    elif state.cancelled is not None:  # the jobs it had requested are finishing
        status, reason = "cancelling", f"cancelled by {state.cancelled.requested_by}"
    else:
        status, reason = "running", ""
    return Row(
        experiment,
        run.model if run else "?",
        run.dataset if run else "?",
        status,
        str(state.decided),
        str(len(history.events) + len(history.unreadable)) if foreign else str(state.events),
        _short(reason),
    )


def system_row(history: History) -> Row | None:
    """The messages that could not be tied to an experiment, as one row; None when there are none."""
    count = sum(isinstance(e.envelope.data, EventRejected) for e in history.events) + len(history.unreadable)
    if not count:
        return None
    return Row(
        history.experiment_id,
        "-",
        "-",
        f"rejected (unaddressable): {count}",
        "-",
        str(len(history.events) + len(history.unreadable)),
        _short(_last_rejection(history)),
    )
