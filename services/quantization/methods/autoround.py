"""AutoRound (Intel, PyPI auto-round): sign-gradient rounding; iters=0 is plain round-to-nearest."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from greenai.services.quantization.methods.base import (
    MethodConfig,
    QuantizationMethod,
    QuantizeContext,
    Requirements,
    check_group_size,
)
from greenai.shared.capabilities import preset
from greenai.shared.jobs import JobError


class AutoRoundConfig(MethodConfig):
    bits: Literal[2, 3, 4, 8] = 4
    group_size: int = Field(default=64, description="-1 for per-channel")
    sym: bool = True
    iters: int = Field(default=0, ge=0, description="0: round-to-nearest; 50-200 for tuned rounding")
    opt_rtn: bool = Field(default=False, description="with iters=0: importance-weighted RTN (needs calibration)")
    nsamples: int = Field(default=32, ge=1)
    seqlen: int = Field(default=256, ge=8)


class AutoRoundMethod(QuantizationMethod):
    name = "autoround"
    config_class = AutoRoundConfig
    requirements = Requirements(cpu=True, cuda=True, memory_factor=2.5, note="tuning is ~20x faster on CUDA")
    summary = "AutoRound weight-only quantization: round-to-nearest (iters=0) or sign-gradient tuned rounding"
    order = 60
    divides_widths = ("group_size",)
    search = ({"bits": [2, 3, 4, 8], "group_size": [64], "iters": [0, 50]},)
    fast_search = ({"bits": [8, 4, 3, 2], "group_size": [64, 32, 128], "iters": [0]},)
    presets = (
        preset(10, "8-bit RTN: near-lossless reference point", bits=8, group_size=64, iters=0),
        preset(20, "4-bit RTN: ~3x smaller, the usual sweet spot", bits=4, group_size=64, iters=0),
        preset(120, "4-bit tuned rounding: recovers RTN loss", bits=4, group_size=64, iters=50),
        preset(130, "3-bit RTN: probes the low end", bits=3, group_size=64, iters=0),
    )

    def uses_calibration(self, config: MethodConfig) -> bool:
        assert isinstance(config, AutoRoundConfig)
        return config.iters > 0 or config.opt_rtn

    def check_model(self, config: MethodConfig, model_config: Any) -> None:
        assert isinstance(config, AutoRoundConfig)
        check_group_size(self.name, config.group_size, model_config)

    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> None:
        assert isinstance(config, AutoRoundConfig)
        import torch
        from auto_round import AutoRound
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(ctx.source)
        model = AutoModelForCausalLM.from_pretrained(ctx.source, dtype=torch.float32)
        kwargs: dict[str, Any] = {}
        if self.uses_calibration(config):
            if not ctx.calibration:
                raise JobError("autoround with iters > 0 or opt_rtn needs calibration text", "invalid")
            # always our own text: auto-round would otherwise fetch a calibration set from the hub
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
            disable_opt_rtn=not config.opt_rtn,
            **kwargs,
        )
        rounder.quantize_and_save(str(ctx.output), format="auto_round")
        _flatten(ctx.output)


def _flatten(output: Path) -> None:
    """auto-round writes into a subfolder named after the scheme (e.g. w4g64/); lift it up."""
    if (output / "config.json").is_file():
        return
    subdirs = [p for p in output.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    if len(subdirs) != 1:
        raise RuntimeError(f"auto-round wrote no single model folder under {output}")
    for item in subdirs[0].iterdir():
        shutil.move(str(item), output / item.name)
    subdirs[0].rmdir()
