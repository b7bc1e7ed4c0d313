"""Runs the episodes the user wrote down in the run request, in order: for reproducing a known
pipeline, or for comparing a hand-picked set of configurations."""

from __future__ import annotations

from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.policies.base import Decision, Policy


class PlanPolicy(Policy):
    name = "plan"

    def ready(self, state: ExperimentState, offers: Offers) -> bool:
        """A plan needs no catalogue to decide: its requests wait, durably, for the agents they name."""
        return True

    def decide(self, state: ExperimentState, skills: SkillMemory, offers: Offers) -> Decision:
        plan = state.run.plan if state.run else None
        if not plan:
            return Decision("end", rationale="policy 'plan' needs a plan in the run request; none was given")
        n = state.decided
        if n >= len(plan):
            return Decision("end", rationale=f"all {len(plan)} planned episode(s) run")
        missing = [f"{s.kind} method {s.method!r}" for s in plan[n] if offers.get(s.kind, s.method) is None]
        note = ""
        if missing:  # the user asked for it: the request waits, durably, for an agent that offers it
            note = f"; no live agent offers {', '.join(missing)} yet: its job waits for one"
        return Decision("compress", tuple(plan[n]), f"planned episode {n + 1} of {len(plan)}{note}")
