"""What the coordinator should append next, as a pure function of the experiment's state.

Each planned event has a stable key; its event id is derived from it, so a coordinator that
crashed after appending and re-plans on redelivery appends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenai.events import EventData
from greenai.events.experiment import EpisodeDecided, ExperimentCompleted, ExperimentFailed
from greenai.events.jobs import STEP_REQUESTS, ArtifactRef, EvaluateRequested
from greenai.projections.experiment import ExperimentState
from greenai.services.coordinator.policies.base import Decision


@dataclass(frozen=True)
class Planned:
    key: str
    data: EventData


def wants_decision(state: ExperimentState) -> bool:
    run = state.run
    if run is None or state.closed or state.spec is None or state.baseline.failure is not None:
        return False
    episodes = state.episodes.values()
    ended = any(ep.decision.action == "end" for ep in episodes)
    busy = any(not ep.finished for ep in episodes)
    return not ended and not busy and state.decided < run.episodes


def plan(state: ExperimentState, decision: Decision | None = None, policy_name: str = "") -> list[Planned]:
    """Events the log lacks. `decision` is the policy's answer when `wants_decision(state)`."""
    run = state.run
    if run is None or state.closed or state.spec is None:
        return []
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
                    target=ArtifactRef(kind="base", model=run.model),
                    task=run.dataset,
                    limit=run.limit,
                    seed=run.seed,
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
                ArtifactRef(kind="base", model=run.model)
                if previous is None
                else ArtifactRef(
                    kind="artifact", model=run.model, path=previous.artifact.path, sha256=previous.artifact.sha256
                )
            )
            request = STEP_REQUESTS[spec.kind](
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
                        target=ArtifactRef(
                            kind="artifact", model=run.model, path=final.artifact.path, sha256=final.artifact.sha256
                        ),
                        task=run.dataset,
                        limit=run.limit,
                        seed=run.seed,
                    ),
                )
            )
    if wants_decision(state):
        if decision is not None:
            n = state.decided + 1
            out.append(
                Planned(
                    f"episode:{n}:decided",
                    EpisodeDecided(
                        episode=n,
                        action=decision.action,
                        steps=list(decision.steps),
                        policy=policy_name,
                        rationale=decision.rationale,
                    ),
                )
            )
    elif not any(not ep.finished for ep in state.episodes.values()) and state.baseline.finished and not out:
        ran = sum(1 for ep in state.episodes.values() if ep.decision.action == "compress")
        ended = any(ep.decision.action == "end" for ep in state.episodes.values())
        reason = "policy chose to end" if ended else f"{run.episodes} episode(s) run"
        out.append(Planned("completed", ExperimentCompleted(reason=reason, episodes_run=ran)))
    return out
