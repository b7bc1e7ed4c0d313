"""UCB1 over method families: try every family once, then favour the families whose results
score best under the run's objective, with an exploration bonus for the ones tried less.

The families are the `group`s the agents announce for their methods; a pipeline's arm is its shape.
"""

from __future__ import annotations

import math

from greenai.events.experiment import Step, steps_key
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.feasibility import infeasible
from greenai.services.coordinator.objectives import PRESETS
from greenai.services.coordinator.policies.base import Decision, Policy
from greenai.services.coordinator.space import Space, configurations


def family(steps: tuple[Step, ...], offers: Offers) -> str:
    """The arm a configuration belongs to: its method's announced group, or its kind of pipeline."""
    if len(steps) > 1:
        return " + ".join(s.kind for s in steps)
    offer = offers.get(steps[0].kind, steps[0].method)
    return offer.group if offer is not None else steps[0].method


def arms(space: Space) -> dict[str, list[tuple[Step, ...]]]:
    """The run's search space, grouped into arms; within an arm, configurations in the space's order."""
    out: dict[str, list[tuple[Step, ...]]] = {}
    for config in configurations(space):
        out.setdefault(family(config.steps, space.offers), []).append(config.steps)
    return out


class BanditPolicy(Policy):
    name = "bandit"
    exploration = 1.0

    def decide(self, state: ExperimentState, skills: SkillMemory, offers: Offers) -> Decision:
        tried = state.tried_keys()
        objective = PRESETS[state.run.objective if state.run else "balanced"]
        baseline = state.baseline.result
        space = Space(offers, state.run.space if state.run else "full")
        ARMS = {
            arm: [c for c in configs if infeasible(c, state.spec, offers) is None]
            for arm, configs in arms(space).items()
        }
        pulls: dict[str, list[float]] = {arm: [] for arm in ARMS}
        for ep in state.episodes.values():
            if not ep.finished or ep.decision.action != "compress":
                continue
            arm = family(tuple(ep.decision.steps), offers)
            if arm not in pulls:
                continue
            if ep.evaluated is not None and baseline is not None:
                pulls[arm].append(objective.score(ep.evaluated, baseline))
            elif ep.failure is not None:
                pulls[arm].append(-10.0)  # a failure is the worst outcome
        total = sum(len(v) for v in pulls.values())
        best_arm, best_value = None, -math.inf
        for arm, configs in ARMS.items():
            if all(steps_key(c) in tried for c in configs):
                continue
            n = len(pulls[arm])
            value = (
                math.inf
                if n == 0
                else sum(pulls[arm]) / n + self.exploration * math.sqrt(2 * math.log(max(total, 1)) / n)
            )
            if value > best_value:
                best_arm, best_value = arm, value
        if best_arm is None:
            return Decision("end", rationale="every configuration of every arm has been tried")
        config = next(c for c in ARMS[best_arm] if steps_key(c) not in tried)
        why = "untried family" if math.isinf(best_value) else f"UCB {best_value:.3f} under objective {objective.name}"
        return Decision("compress", config, f"bandit: {best_arm} ({why})")
