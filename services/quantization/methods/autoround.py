"""AutoRound (Intel, PyPI auto-round): sign-gradient rounding; iters=0 is plain round-to-nearest."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from greenai.services.quantization.methods.base import (
    MethodConfig,
    QuantizationMethod,
    QuantizeContext,
    Requirements,
)
from greenai.shared.jobs import JobError


class AutoRoundConfig(MethodConfig):
    bits: Literal[2, 3, 4, 8] = 4
    group_size: int = Field(default=64, description="-1 for per-channel")
    sym: bool = True
    iters: int = Field(default=0, ge=0, description="0: RTN, no calibration; 50-200 for tuned rounding")
    nsamples: int = Field(default=32, ge=1)
    seqlen: int = Field(default=256, ge=8)


class AutoRoundMethod(QuantizationMethod):
    name = "autoround"
    config_class = AutoRoundConfig
    requirements = Requirements(cpu=True, cuda=True, memory_factor=2.5, note="tuning is ~20x faster on CUDA")

    def uses_calibration(self, config: MethodConfig) -> bool:
        assert isinstance(config, AutoRoundConfig)
        return config.iters > 0

    def check_model(self, config: MethodConfig, model_config: Any) -> None:
        assert isinstance(config, AutoRoundConfig)
        if config.group_size <= 0:
            return
        widths = {model_config.hidden_size, getattr(model_config, "intermediate_size", model_config.hidden_size)}
        bad = sorted(w for w in widths if w % config.group_size)
        if bad:
            raise JobError(
                f"autoround: group size {config.group_size} does not divide the layer width(s) {bad}; "
                "choose a divisor (e.g. 64 or 32)",
                "invalid",
            )

    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> None:
        assert isinstance(config, AutoRoundConfig)
        import torch
        from auto_round import AutoRound
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(ctx.source)
        model = AutoModelForCausalLM.from_pretrained(ctx.source, dtype=torch.float32)
        kwargs: dict[str, Any] = {}
        if config.iters > 0:
            if not ctx.calibration:
                raise JobError("autoround with iters > 0 needs calibration text", "invalid")
            kwargs["dataset"] = ctx.calibration
        rounder = AutoRound(
            model,
            tokenizer,
            bits=config.bits,
            group_size=config.group_size,
            sym=config.sym,
            iters=config.iters,
            nsamples=config.nsamples,
            seqlen=config.seqlen,
            seed=ctx.seed,
            device_map=ctx.device,
            **kwargs,
        )
        rounder.quantize_and_save(str(ctx.output), format="auto_round")
