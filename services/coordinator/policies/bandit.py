"""UCB1 over method families: try every family once, then favour the families whose results
score best under the run's objective, with an exploration bonus for the ones tried less."""

from __future__ import annotations

import math

from greenai.events.experiment import Step, steps_key
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.objectives import PRESETS
from greenai.services.coordinator.policies.base import Decision, Policy


def _q(method: str, **params: object) -> tuple[Step, ...]:
    return (Step(kind="quantize", method=method, params=dict(params)),)


def _p(method: str, **params: object) -> tuple[Step, ...]:
    return (Step(kind="prune", method=method, params=dict(params)),)


ARMS: dict[str, list[tuple[Step, ...]]] = {
    "autoround": [
        _q("autoround", bits=8, group_size=64),
        _q("autoround", bits=4, group_size=64),
        _q("autoround", bits=3, group_size=64),
    ],
    "gptq": [_q("gptq", bits=4, group_size=64), _q("gptq", bits=8, group_size=64), _q("gptq", bits=3, group_size=64)],
    "awq": [_q("awq", bits=4, group_size=64)],
    "bitsandbytes": [_q("bnb_int8"), _q("bnb_4bit", quant_type="nf4"), _q("bnb_4bit", quant_type="fp4")],
    "torchao": [_q("torchao_int8", scheme="dynamic"), _q("torchao_int8", scheme="weight_only")],
    "unstructured pruning": [_p("wanda", sparsity=0.5), _p("sparsegpt", sparsity=0.5), _p("wanda", pattern="2:4")],
    "structured pruning": [_p("layer_drop", layers=2), _p("mlp_channels", ratio=0.125), _p("layer_drop", layers=4)],
    "prune + LoRA": [(*_p("wanda", sparsity=0.5), Step(kind="lora", method="lora", params={"steps": 100}))],
}


class BanditPolicy(Policy):
    name = "bandit"
    exploration = 1.0

    def decide(self, state: ExperimentState, skills: SkillMemory) -> Decision:
        tried = state.tried_keys()
        objective = PRESETS[state.run.objective if state.run else "balanced"]
        baseline = state.baseline.result
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
