"""What the coordinator should append next, as a pure function of the experiment's state.

Each planned event has a stable key; its event id is derived from it, so a coordinator that
crashed after appending and re-plans on redelivery appends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from greenai.events import EventData
from greenai.events.experiment import DecisionProposed, EpisodeDecided, ExperimentCompleted, ExperimentFailed
from greenai.events.jobs import ArtifactRef, EvaluateRequested, step_request_class
from greenai.events.results import EvaluateCompleted
from greenai.projections.experiment import ExperimentState
from greenai.projections.pareto import Candidate, dominates
from greenai.services.coordinator.policies.base import Decision


@dataclass(frozen=True)
class Planned:
    key: str
    data: EventData


def stop_reason(state: ExperimentState, now: datetime | None = None) -> str | None:
    """Why no further episode should be decided, or None. `now` makes the time budget testable."""
    run = state.run
    assert run is not None
    episodes = sorted(state.episodes.values(), key=lambda e: e.number)
    if any(ep.decision.action == "end" for ep in episodes):
        end = next(ep for ep in episodes if ep.decision.action == "end")
        return f"policy chose to end: {end.decision.rationale}"
    if state.decided >= run.episodes:
        return f"{run.episodes} episode(s) run"
    if run.time_budget_h is not None and state.run_event is not None:
        spent = ((now or datetime.now(UTC)) - state.run_event.time).total_seconds() / 3600
        if spent >= run.time_budget_h:
            return f"time budget of {run.time_budget_h} h used ({spent:.2f} h)"
    if run.patience is not None:
        finished = [ep for ep in episodes if ep.finished]
        if len(finished) >= run.patience and not any(front_improvements(state)[-run.patience :]):
            return f"no new Pareto-front point in the last {run.patience} episode(s)"
    return None


def front_improvements(state: ExperimentState) -> list[bool]:
    """For each finished episode in order: did its result join the front of everything before it?"""
    seen: list[Candidate] = []
    if state.baseline.result is not None:
        seen.append(_candidate(state.experiment_id, state.baseline.result))
    out = []
    for ep in sorted(state.episodes.values(), key=lambda e: e.number):
        if not ep.finished or ep.decision.action != "compress":
            continue
        if ep.evaluated is None:
            out.append(False)
            continue
        c = _candidate(state.experiment_id, ep.evaluated)
        out.append(not any(dominates(s, c) for s in seen))
        seen.append(c)
    return out


def _candidate(exp: str, r: EvaluateCompleted) -> Candidate:
    return Candidate(
        experiment_id=exp, episode=r.episode, method="", params={}, task=r.task, accuracy=r.accuracy,
        ci_low=r.ci_low, ci_high=r.ci_high, n=r.n, latency_ms_per_token=r.latency.decode_ms_per_token,
        peak_rss_mb=r.peak_rss_mb, size_bytes=r.size_bytes, energy_j=r.energy.joules, energy_mode=r.energy.mode,
    )  # fmt: skip


def promotions_due(state: ExperimentState) -> list[int]:
    """Episodes (0: the baseline) on the current front that have no larger evaluation yet."""
    run = state.run
    if run is None or run.promote_limit is None or run.limit is None:
        return []  # no promotion asked for, or every evaluation is already on all items
    results = {0: state.baseline.result} if state.baseline.result is not None else {}
    results |= {n: ep.evaluated for n, ep in state.episodes.items() if ep.evaluated is not None}
    if run.promote_limit and run.limit is not None and run.promote_limit <= run.limit:
        return []  # nothing larger to promote to
    cands = {n: _candidate(state.experiment_id, r) for n, r in results.items()}
    front = [n for n, c in cands.items() if not any(dominates(o, c) for m, o in cands.items() if m != n)]
    promotions = state.promotions()
    return sorted(n for n in front if promotions[n].request is None)


def needs_policy(state: ExperimentState, now: datetime | None = None) -> bool:
    """Whether the policy must be asked now: a decision is due and, in an interactive run, no
    proposal is waiting for (or has passed) review."""
    if not wants_decision(state, now):
        return False
    if state.run is None or not state.run.interactive:
        return True
    pending = state.open_proposal()
    return pending is None or (pending[1] is not None and pending[1].verdict == "reject")


def _interactive(state: ExperimentState, decision: Decision | None, policy_name: str) -> list[Planned]:
    n = state.decided + 1
    pending = state.open_proposal()
    if pending is None or (pending[1] is not None and pending[1].verdict == "reject"):
        if decision is None:
            return []
        number = 1 if pending is None else pending[0].proposal + 1
        proposal = DecisionProposed(
            episode=n, proposal=number, action=decision.action, steps=list(decision.steps),
            policy=decision.policy or policy_name,
            rationale=decision.rationale, search_point=decision.search_point,
        )  # fmt: skip
        return [Planned(f"episode:{n}:proposal:{number}", proposal)]
    proposed, review = pending
    if review is None:
        return []  # waiting for a person
    if review.verdict == "approve":
        steps, action = proposed.steps, proposed.action
        policy, why = proposed.policy, f"{proposed.rationale} — approved by {review.reviewer}"
    else:
        steps, action = review.steps, ("compress" if review.steps else "end")
        policy, why = "human", f"edited by {review.reviewer} (proposal was: {proposed.rationale})"
    if review.comment:
        why += f"; {review.comment}"
    decided = EpisodeDecided(
        episode=n, action=action, steps=steps, policy=policy, rationale=why,
        search_point=proposed.search_point if review.verdict == "approve" else None,
    )  # fmt: skip
    return [Planned(f"episode:{n}:decided", decided)]


def wants_decision(state: ExperimentState, now: datetime | None = None) -> bool:
    run = state.run
    # the baseline first: a benchmark the evaluation agent refuses ends the run before any compression,
    # and the baseline's latency is not measured beside a compression job on the same cores
    if run is None or state.closed or state.spec is None or state.baseline.result is None:
        return False
    busy = any(not ep.finished for ep in state.episodes.values())
    return not busy and stop_reason(state, now) is None


def plan(
    state: ExperimentState, decision: Decision | None = None, policy_name: str = "", now: datetime | None = None
) -> list[Planned]:
    """Events the log lacks. `decision` is the policy's answer when `wants_decision(state)`."""
    run = state.run
    if run is None or state.closed or state.spec is None or state.staged is None:
        return []  # every job names the base model by content: nothing runs before it is staged
    exp = state.experiment_id
    if state.baseline.failure is not None:
        f = state.baseline.failure
        return [
            Planned(
                "failed", ExperimentFailed(reason=f"baseline evaluation failed: {f.message}", error_type=f.error_type)
            )
        ]
    out: list[Planned] = []
    if state.baseline.request is None:
        out.append(
            Planned(
                "baseline:evaluate",
                EvaluateRequested(
                    job_id=f"{exp}-ep0-evaluate",
                    episode=0,
                    target=state.base_ref(),
                    task=run.dataset,
                    limit=run.limit,
                    seed=run.seed,
                    secondary=list(run.secondary),
                    trust_task_code=run.trust_task_code,
                ),
            )
        )
    for n, ep in sorted(state.episodes.items()):
        if ep.decision.action != "compress" or ep.failure is not None:
            continue
        step = ep.next_step
        if step is not None:
            if step in ep.requests:
                continue  # running
            spec = ep.decision.steps[step]
            previous = ep.completed.get(step - 1)
            source = (
                state.base_ref()
                if previous is None
                else ArtifactRef(kind="artifact", model=run.model, artifact=previous.artifact)
            )
            request = step_request_class(spec.kind)(
                job_id=f"{exp}-ep{n}-s{step}-{spec.kind}",
                episode=n,
                step=step,
                source=source,
                method=spec.method,
                params=dict(spec.params),
                calibration_samples=run.calibration_samples,
                calibration_seq_len=run.calibration_seq_len,
                seed=run.seed,
            )
            out.append(Planned(f"episode:{n}:step:{step}", request))
        elif ep.evaluate_request is None:
            final = ep.final_artifact
            assert final is not None
            out.append(
                Planned(
                    f"episode:{n}:evaluate",
                    EvaluateRequested(
                        job_id=f"{exp}-ep{n}-evaluate",
                        episode=n,
                        target=ArtifactRef(kind="artifact", model=run.model, artifact=final.artifact),
                        task=run.dataset,
                        limit=run.limit,
                        seed=run.seed,
                        secondary=list(run.secondary),
                        trust_task_code=run.trust_task_code,
                    ),
                )
            )
    for n in promotions_due(state):
        first = state.baseline.request if n == 0 else state.episodes[n].evaluate_request
        assert first is not None
        promotion = first.model_copy(
            update={"job_id": f"{exp}-ep{n}-promote", "limit": run.promote_limit or None, "purpose": "promotion"}
        )
        out.append(Planned(f"episode:{n}:promote", promotion))
    promoting = any(p.pending for p in state.promotions().values())
    if wants_decision(state, now) and run.interactive:
        out += _interactive(state, decision, policy_name)
    elif wants_decision(state, now):
        if decision is not None:
            n = state.decided + 1
            out.append(
                Planned(
                    f"episode:{n}:decided",
                    EpisodeDecided(
                        episode=n,
                        action=decision.action,
                        steps=list(decision.steps),
                        policy=decision.policy or policy_name,
                        rationale=decision.rationale,
                        search_point=decision.search_point,
                        search_space=decision.search_space,
                    ),
                )
            )
    elif (
        not any(not ep.finished for ep in state.episodes.values())
        and state.baseline.finished
        and not out
        and not promoting
    ):
        ran = sum(1 for ep in state.episodes.values() if ep.decision.action == "compress")
        reason = stop_reason(state, now) or "nothing left to do"
        out.append(Planned("completed", ExperimentCompleted(reason=reason, episodes_run=ran)))
    return out
