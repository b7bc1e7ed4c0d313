"""What a cancelled experiment still gets from the coordinator: nothing new — no decision, no job, no
promotion, not even the spec or the staged model of a run cancelled before they came — and, once
every job already requested has finished or failed for good, its completion with the cancellation
as the reason. A pure function of the folded state, like the planner, so a redelivered trigger or a
second coordinator appends the same (keyed) completion once."""

from __future__ import annotations

from greenai.events import EventData
from greenai.events.experiment import ExperimentCompleted
from greenai.projections.experiment import ExperimentState


def jobs_in_flight(state: ExperimentState) -> list[str]:
    """Job ids requested and not yet completed or failed for good: the work a cancellation lets finish."""
    out: list[str] = []
    baseline = state.baseline
    if baseline.request is not None and not baseline.finished:
        out.append(baseline.request.job_id)
    out += [p.request.job_id for p in state.promotions().values() if p.pending and p.request is not None]
    for ep in state.episodes.values():
        if ep.failure is not None:
            continue
        out += [r.job_id for i, r in sorted(ep.requests.items()) if i not in ep.completed]
        if ep.evaluate_request is not None and ep.evaluated is None:
            out.append(ep.evaluate_request.job_id)
    return out


def cancellation_reason(state: ExperimentState) -> str:
    c = state.cancelled
    assert c is not None
    return f"cancelled by {c.requested_by}" + (f": {c.reason}" if c.reason else "")


def after_cancel(state: ExperimentState) -> list[tuple[str, EventData]]:
    """The keyed events a cancelled experiment still needs: its completion once nothing runs."""
    if state.cancelled is None or state.closed or jobs_in_flight(state):
        return []
    ran = sum(1 for ep in state.episodes.values() if ep.decision.action == "compress")
    return [("completed", ExperimentCompleted(reason=cancellation_reason(state), episodes_run=ran))]
