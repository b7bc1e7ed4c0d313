"""UCB1 over method families: try every family once, then favour the families whose results
score best under the run's objective, with an exploration bonus for the ones tried less."""

from __future__ import annotations

import math

from greenai.events.experiment import Step, steps_key
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.objectives import PRESETS
from greenai.services.coordinator.policies.base import Decision, Policy
from greenai.services.coordinator.space import configurations, space_of

UNSTRUCTURED = {"magnitude", "wanda", "sparsegpt"}
FAMILIES = {"bnb_int8": "bitsandbytes", "bnb_4bit": "bitsandbytes", "torchao_int8": "torchao"}


def family(steps: tuple[Step, ...]) -> str:
    """The arm a configuration belongs to: its method family, or its kind of pipeline."""
    if len(steps) > 1:
        return " + ".join(s.kind for s in steps)
    step = steps[0]
    if step.kind == "prune":
        return "unstructured pruning" if step.method in UNSTRUCTURED else "structured pruning"
    return FAMILIES.get(step.method, step.method)


def arms(space: str) -> dict[str, list[tuple[Step, ...]]]:
    """The run's search space, grouped into arms; within an arm, configurations in the space's order."""
    out: dict[str, list[tuple[Step, ...]]] = {}
    for config in configurations(space_of(space)):
        out.setdefault(family(config), []).append(config)
    return out


class BanditPolicy(Policy):
    name = "bandit"
    exploration = 1.0

    def decide(self, state: ExperimentState, skills: SkillMemory) -> Decision:
        tried = state.tried_keys()
        objective = PRESETS[state.run.objective if state.run else "balanced"]
        baseline = state.baseline.result
        ARMS = arms(state.run.space if state.run else "full")
        pulls: dict[str, list[float]] = {arm: [] for arm in ARMS}
        for ep in state.episodes.values():
            key = steps_key(ep.decision.steps)
            arm = next((a for a, configs in ARMS.items() if key in {steps_key(c) for c in configs}), None)
            if arm is None or not ep.finished:
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
