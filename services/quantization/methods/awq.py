"""AWQ (Lin et al. 2023): activation-aware per-channel scales before 4-bit rounding.

Runs through GPTQModel (autoawq, the original, is deprecated and its checkpoints break with
transformers 5). On CPU the portable torch AWQ kernel packs the weights; on CUDA GPTQModel picks
its GEMM kernel. The checkpoint (`quant_method: awq`, GEMM layout) loads with plain `transformers`.
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


class AWQConfig(MethodConfig):
    bits: Literal[4] = 4
    group_size: int = Field(default=64, description="-1 for per-channel")
    zero_point: bool = Field(default=False, description="asymmetric quantization with zero points")


class AWQMethod(QuantizationMethod):
    name = "awq"
    config_class = AWQConfig
    requirements = Requirements(cpu=True, cuda=True, memory_factor=2.5, note="CPU: GPTQModel's torch AWQ kernel")
    summary = "AWQ 4-bit: activation-aware per-channel scales before rounding"
    # GPTQModel fails on GPT-2 (Conv1D) and Phi-3 (fused projections): checked on tiny random models
    families = frozenset({"llama", "mistral", "qwen2", "qwen3"})
    order = 60
    divides_widths = ("group_size",)
    search = ({"bits": [4], "group_size": [64]},)
    presets = (preset(40, "AWQ 4-bit: activation-aware scales recover RTN's loss", bits=4, group_size=64),)
    needs_calibration = True

    def check_model(self, config: MethodConfig, model_config: Any) -> None:
        assert isinstance(config, AWQConfig)
        check_group_size(self.name, config.group_size, model_config)

    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> None:
        assert isinstance(config, AWQConfig)
        from gptqmodel import QuantizeConfig
        from gptqmodel.quantization.config import FORMAT, METHOD
        from gptqmodel.utils.backend import BACKEND

        quant_config = QuantizeConfig(
            bits=config.bits,
            group_size=config.group_size,
            sym=not config.zero_point,
            quant_method=METHOD.AWQ,
            format=FORMAT.GEMM,
        )
        # GPTQModel's default AWQ packer is the CUDA GEMM kernel; the torch one runs anywhere.
        backend = BACKEND.AWQ_TORCH if ctx.device == "cpu" else None
        quantize_with_gptqmodel(quant_config, ctx, backend)
