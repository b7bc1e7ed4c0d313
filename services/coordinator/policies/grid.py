"""A deterministic walk over a small grid of quantization configs, cheapest and safest first."""

from __future__ import annotations

from typing import Any

from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory, params_key
from greenai.services.coordinator.policies.base import Decision, Policy

GRID: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("autoround", {"bits": 8, "group_size": 64, "iters": 0}, "8-bit RTN: near-lossless reference point"),
    ("autoround", {"bits": 4, "group_size": 64, "iters": 0}, "4-bit RTN: ~3x smaller, the usual sweet spot"),
    ("torchao_int8", {"scheme": "dynamic"}, "int8 activations and weights: the CPU speed-up candidate"),
    ("awq", {"bits": 4, "group_size": 64}, "AWQ 4-bit: activation-aware scales recover RTN's loss"),
    ("gptq", {"bits": 4, "group_size": 64}, "GPTQ 4-bit: second-order rounding"),
    ("bnb_int8", {}, "LLM.int8: outlier-aware 8-bit, no calibration"),
    ("bnb_4bit", {"quant_type": "nf4"}, "NF4: QLoRA's 4-bit base"),
    ("autoround", {"bits": 4, "group_size": 64, "iters": 50}, "4-bit tuned rounding: recovers RTN loss"),
    ("autoround", {"bits": 3, "group_size": 64, "iters": 0}, "3-bit RTN: probes the low end"),
)


class GridPolicy(Policy):
    name = "grid"

    def decide(self, state: ExperimentState, skills: SkillMemory) -> Decision:
        tried = {(ep.decision.method, params_key(ep.decision.params)) for ep in state.episodes.values()}
        family = state.spec.family if state.spec else "unknown"
        failed_before = {
            (s.method, params_key(s.params)) for s in skills.for_family(family) if s.failures and s.failures >= s.trials
        }
        for method, params, why in GRID:
            key = (method, params_key(params))
            if key in tried:
                continue
            if key in failed_before:
                continue
            return Decision("quantize", method, dict(params), f"grid step: {why}")
        return Decision("end", rationale="grid exhausted")
