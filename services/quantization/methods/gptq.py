"""GPTQ (Frantar et al. 2022): second-order, column-by-column rounding from calibration Hessians.

Runs through GPTQModel 7.6 (the last release that supports torch 2.13); its checkpoints load with
plain `transformers` when gptqmodel and optimum are installed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from greenai.services.quantization.methods._gptqmodel import quantize_with_gptqmodel
from greenai.services.quantization.methods.base import (
    MethodConfig,
    QuantizationMethod,
    QuantizeContext,
    Requirements,
    check_group_size,
)
from greenai.shared.capabilities import preset


class GPTQConfig(MethodConfig):
    bits: Literal[2, 3, 4, 8] = 4
    group_size: int = Field(default=64, description="-1 for per-channel")
    act_order: bool = Field(default=False, description="desc_act: quantize columns by falling activation size")
    damp_percent: float = Field(default=0.05, gt=0, lt=1)
    sym: bool = True


class GPTQMethod(QuantizationMethod):
    name = "gptq"
    config_class = GPTQConfig
    requirements = Requirements(cpu=True, cuda=True, memory_factor=2.5, note="GPTQModel: CPU kernels run in bfloat16")
    summary = "GPTQ: second-order (Hessian-aware) rounding, layer by layer"
    # GPTQModel fails on GPT-2 (Conv1D) and Phi-3 (fused projections): checked on tiny random models
    families = frozenset({"llama", "mistral", "qwen2", "qwen3"})
    order = 60
    divides_widths = ("group_size",)
    search = ({"bits": [3, 4, 8], "group_size": [64]},)
    presets = (preset(50, "GPTQ 4-bit: second-order rounding", bits=4, group_size=64),)
    needs_calibration = True

    def check_model(self, config: MethodConfig, model_config: Any) -> None:
        assert isinstance(config, GPTQConfig)
        check_group_size(self.name, config.group_size, model_config)

    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> None:
        assert isinstance(config, GPTQConfig)
        from gptqmodel import QuantizeConfig

        quantize_with_gptqmodel(
            QuantizeConfig(
                bits=config.bits,
                group_size=config.group_size,
                desc_act=config.act_order,
                damp_percent=config.damp_percent,
                sym=config.sym,
            ),
            ctx,
        )
