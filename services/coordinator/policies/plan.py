"""Runs the episodes the user wrote down in the run request, in order: for reproducing a known
pipeline, or for comparing a hand-picked set of configurations."""

from __future__ import annotations

from greenai.events.experiment import Step
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.policies.base import Decision, Policy


class PlanPolicy(Policy):
    name = "plan"

    def _next(self, state: ExperimentState) -> list[Step] | None:
        plan = state.run.plan if state.run else None
        return plan[state.decided] if plan and state.decided < len(plan) else None

    def ready(self, state: ExperimentState, offers: Offers) -> bool:
        steps = self._next(state)
        return steps is None or all(offers.get(s.kind, s.method) is not None for s in steps)

    def decide(self, state: ExperimentState, skills: SkillMemory, offers: Offers) -> Decision:
        plan = state.run.plan if state.run else None
        if not plan:
            return Decision("end", rationale="policy 'plan' needs a plan in the run request; none was given")
        n = state.decided
        if n >= len(plan):
            return Decision("end", rationale=f"all {len(plan)} planned episode(s) run")
        missing = [f"{s.kind} method {s.method!r}" for s in plan[n] if offers.get(s.kind, s.method) is None]
        if missing:  # waiting would not help: the coordinator already gave agents time to announce
            return Decision(
                "end", rationale=f"planned episode {n + 1} cannot run: no live agent offers {', '.join(missing)}"
            )
        return Decision("compress", tuple(plan[n]), f"planned episode {n + 1} of {len(plan)}")
