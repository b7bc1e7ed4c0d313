"""A deterministic walk over a small grid of quantization configs, cheapest and safest first."""

from __future__ import annotations

from typing import Any

from greenai.events.experiment import Step, steps_key
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory, params_key
from greenai.services.coordinator.feasibility import infeasible
from greenai.services.coordinator.policies.base import Decision, Policy


def _q(method: str, params: dict[str, Any], why: str) -> Decision:
    return Decision.single("quantize", method, params, f"grid step: {why}")


def _pipeline(steps: tuple[Step, ...], why: str) -> Decision:
    return Decision("compress", steps, f"grid step: {why}")


GRID: tuple[Decision, ...] = (
    _q("autoround", {"bits": 8, "group_size": 64, "iters": 0}, "8-bit RTN: near-lossless reference point"),
    _q("autoround", {"bits": 4, "group_size": 64, "iters": 0}, "4-bit RTN: ~3x smaller, the usual sweet spot"),
    _q("torchao_int8", {"scheme": "dynamic"}, "int8 activations and weights: the CPU speed-up candidate"),
    _q("awq", {"bits": 4, "group_size": 64}, "AWQ 4-bit: activation-aware scales recover RTN's loss"),
    _q("gptq", {"bits": 4, "group_size": 64}, "GPTQ 4-bit: second-order rounding"),
    Decision.single(
        "prune", "wanda", {"sparsity": 0.5}, "grid step: Wanda 50 %: activation-aware unstructured sparsity"
    ),
    Decision.single(
        "prune", "layer_drop", {"layers": 4}, "grid step: drop the 4 most redundant layers: really smaller and faster"
    ),
    _pipeline(
        (
            Step(kind="prune", method="wanda", params={"sparsity": 0.5}),
            Step(kind="lora", method="lora", params={"steps": 50, "rank": 8}),
        ),
        "Wanda 50 % then LoRA recovery",
    ),
    _pipeline(
        (
            Step(kind="prune", method="layer_drop", params={"layers": 4}),
            Step(kind="quantize", method="autoround", params={"bits": 4, "group_size": 64}),
            Step(kind="lora", method="qlora", params={"steps": 50, "rank": 8}),
        ),
        "drop layers → 4-bit → QLoRA recovery",
    ),
    _q("bnb_int8", {}, "LLM.int8: outlier-aware 8-bit, no calibration"),
    _q("bnb_4bit", {"quant_type": "nf4"}, "NF4: QLoRA's 4-bit base"),
    _q("autoround", {"bits": 4, "group_size": 64, "iters": 50}, "4-bit tuned rounding: recovers RTN loss"),
    _q("autoround", {"bits": 3, "group_size": 64, "iters": 0}, "3-bit RTN: probes the low end"),
)


class GridPolicy(Policy):
    name = "grid"

    def decide(self, state: ExperimentState, skills: SkillMemory) -> Decision:
        tried = state.tried_keys()
        family = state.spec.family if state.spec else "unknown"
        # a configuration that failed every time on this model family is not worth another try
        hopeless = {
            (s.method, params_key(s.params)) for s in skills.for_family(family) if s.trials and s.failures >= s.trials
        }
        for decision in GRID:
            label = " → ".join(s.method for s in decision.steps)
            params = (
                dict(decision.steps[0].params)
                if len(decision.steps) == 1
                else {"steps": [s.model_dump() for s in decision.steps]}
            )
            if (
                steps_key(decision.steps) in tried
                or (label, params_key(params)) in hopeless
                or infeasible(decision.steps, state.spec) is not None
            ):
                continue
            return decision
        return Decision("end", rationale="grid exhausted")
