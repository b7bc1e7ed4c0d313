"""Mixed precision under an average-bits budget: each Linear gets its own width (e.g. 2, 4 or 8 bits).

Uniform 4-bit RTN costs SmolLM2-135M about +31 % perplexity on this CPU, but layers differ a lot in
how much rounding hurts. Two ways to choose the widths, both writing AutoRound RTN weights in the
`auto_round` format (per-layer bits in `quantization_config.extra_config`, so plain
`from_pretrained` reloads it):

- `knapsack` (ours): a Fisher estimate of each layer's loss increase at each width on calibration
  text (methods.sensitivity), then a greedy multiple-choice knapsack (methods.bit_budget);
- `autoscheme`: auto-round's AutoScheme (delta-loss selection), with scale bits ignored so both
  strategies count bits the same way: parameter-weighted nominal width of the quantized Linears.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from greenai.services.quantization.methods.autoround import _flatten
from greenai.services.quantization.methods.base import (
    MethodConfig,
    Metrics,
    QuantizationMethod,
    QuantizeContext,
    Requirements,
    check_group_size,
)
from greenai.services.quantization.methods.bit_budget import assign_bits, average_bits, check_budget
from greenai.shared.capabilities import preset
from greenai.shared.jobs import JobError

MAX_LAYER_BITS_CHARS = 64 * 1024  # the completion event must stay under max_event_bytes (256 KiB)
WidthSet = Literal["2,4,8", "3,4,8", "2,3,4,8", "2,4", "3,4", "4,8", "2,3,4"]


class MixedConfig(MethodConfig):
    avg_bits: float = Field(
        default=4.5, ge=2, le=8, description="Budget: parameter-weighted mean width of the quantized Linears"
    )
    candidate_bits: WidthSet = Field(default="2,4,8", description="The widths a layer may get")
    group_size: int = Field(default=64, ge=1, description="Weights sharing one scale")
    strategy: Literal["knapsack", "autoscheme"] = Field(
        default="knapsack", description="knapsack: Fisher sensitivity + greedy knapsack; autoscheme: auto-round's"
    )
    opt_rtn: bool = Field(default=False, description="auto-round's importance-weighted RTN instead of plain RTN")
    iters: int = Field(
        default=0, ge=0, le=1000, description="AutoRound's tuned rounding steps per block (0: RTN); slow on a CPU"
    )
    sensitivity_samples: int = Field(
        default=32, ge=1, le=512, description="Calibration samples scored (the cost grows with their tokens)"
    )

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(sorted(int(b) for b in self.candidate_bits.split(",")))

    @model_validator(mode="after")
    def _budget_is_reachable(self) -> MixedConfig:
        check_budget(self.avg_bits, self.widths)
        return self


class MixedPrecisionMethod(QuantizationMethod):
    name = "mixed"
    config_class = MixedConfig
    requirements = Requirements(
        cpu=True,
        cuda=True,
        memory_factor=10.0,
        note="one forward+backward per calibration batch, then RTN; peak 5.3 GB measured on SmolLM2-135M (0.5 GB)",
    )
    needs_calibration = True
    summary = "Per-layer bit widths (e.g. 2/4/8) chosen on calibration data to meet an average-bits budget"
    order = 65
    families = frozenset({"llama", "mistral", "qwen2", "qwen3"})  # decoder blocks of plain nn.Linear
    divides_widths = ("group_size",)
    search = (
        {"avg_bits": [3.5, 4.5, 5.5], "candidate_bits": ["2,4,8", "3,4,8"], "group_size": [64],
         "strategy": ["knapsack", "autoscheme"]},
    )  # fmt: skip
    fast_search = (  # 8 samples: the sensitivity pass costs about one more RTN job on SmolLM2
        {"avg_bits": [4.5, 5.5], "candidate_bits": ["2,4,8"], "group_size": [64], "strategy": ["knapsack"],
         "sensitivity_samples": [8]},
    )  # fmt: skip
    presets = (
        preset(25, "4.5 avg bits: most layers at 4, the sensitive ones at 8", avg_bits=4.5, candidate_bits="2,4,8"),
        preset(35, "3.5 avg bits: below uniform 4-bit size", avg_bits=3.5, candidate_bits="2,4,8"),
        preset(45, "5.5 avg bits: toward 8-bit quality", avg_bits=5.5, candidate_bits="3,4,8"),
        preset(140, "4.5 avg bits chosen by auto-round's AutoScheme", avg_bits=4.5, strategy="autoscheme"),
    )

    def check_model(self, config: MethodConfig, model_config: Any) -> None:
        assert isinstance(config, MixedConfig)
        check_group_size(self.name, config.group_size, model_config)

    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> Metrics:
        assert isinstance(config, MixedConfig)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not ctx.calibration:
            raise JobError("mixed needs calibration text to measure each layer's sensitivity", "invalid")
        texts = list(ctx.calibration[: config.sensitivity_samples])
        tokenizer = AutoTokenizer.from_pretrained(ctx.source)
        model: Any = AutoModelForCausalLM.from_pretrained(ctx.source, dtype=torch.float32)
        # read before AutoRound swaps the layers for its own
        sizes = {name: int(layer.weight.numel()) for name, layer in _linears(model).items()}
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="greenai-mixed-") as tmp:
            calibration_file = Path(tmp) / "calibration.json"  # auto-round reads a local file, never the hub
            calibration_file.write_text(json.dumps(texts))
            seqlen = min(512, min(len(tokenizer(t).input_ids) for t in texts))
            common = {
                "iters": config.iters, "nsamples": len(texts), "seqlen": seqlen, "dataset": str(calibration_file),
                "seed": ctx.seed, "device_map": ctx.device, "enable_torch_compile": False,
                "disable_opt_rtn": not config.opt_rtn,
            }  # fmt: skip
            metrics: Metrics = {"strategy": config.strategy, "avg_bits_target": config.avg_bits}
            if config.strategy == "knapsack":
                layer_config, estimate = self._knapsack(model.to(ctx.device), tokenizer, config, texts, sizes)
                model.to("cpu")  # AutoRound moves each block to the device itself
                metrics["estimated_loss_increase"] = round(estimate, 6)
                rounder = _autoround()(
                    model, tokenizer, bits=config.widths[0], group_size=config.group_size, sym=True,
                    layer_config=layer_config, **common,
                )  # fmt: skip
            else:
                rounder = _autoround()(model, tokenizer, scheme=_autoscheme(config, len(texts), seqlen,
                                       calibration_file, ctx.device), **common)  # fmt: skip
            rounder.post_init()  # AutoScheme chooses the widths here (outside inference mode: it needs autograd)
            metrics["selection_s"] = round(time.perf_counter() - started, 2)
            rounder.quantize_and_save(str(ctx.output), format="auto_round")
        _flatten(ctx.output)
        bits = written_bits(ctx.output, sizes)
        if config.strategy == "knapsack" and bits != {name: c["bits"] for name, c in layer_config.items()}:
            raise RuntimeError("mixed: the artifact's per-layer bits differ from the assignment it was given")
        realized = average_bits(bits, sizes)
        if realized > config.avg_bits + 1e-9:
            raise RuntimeError(f"mixed: the artifact averages {realized:.4f} bits, over the budget {config.avg_bits}")
        metrics["avg_bits"] = round(realized, 4)
        return {**metrics, **bits_metrics(bits)}

    def _knapsack(
        self, model: Any, tokenizer: Any, config: MixedConfig, texts: list[str], sizes: dict[str, int]
    ) -> tuple[dict[str, dict[str, Any]], float]:
        from greenai.services.quantization.methods.sensitivity import measure_sensitivity

        scores = measure_sensitivity(model, tokenizer, texts, config.widths, config.group_size)
        chosen = assign_bits(sizes, scores, config.avg_bits)
        estimate = sum(scores[name][b] for name, b in chosen.items())
        layer_config = {name: {"bits": b, "group_size": config.group_size, "sym": True} for name, b in chosen.items()}
        return layer_config, estimate


def _linears(model: Any) -> dict[str, Any]:
    from greenai.services.quantization.methods.sensitivity import quantizable_linears

    return quantizable_linears(model)


def written_bits(folder: Path, layers: Iterable[str]) -> dict[str, int]:
    """Each layer's width as the artifact's config.json states it (what a reload will use)."""
    qc = json.loads((folder / "config.json").read_text())["quantization_config"]
    extra = qc.get("extra_config") or {}
    return {name: int(extra.get(name, {}).get("bits", qc["bits"])) for name in layers}


def bits_metrics(bits: dict[str, int], limit: int = MAX_LAYER_BITS_CHARS) -> Metrics:
    """Layers per width, and each layer's width as compact JSON unless that would bloat the event."""
    out: Metrics = {f"layers_{w}bit": sum(1 for b in bits.values() if b == w) for w in sorted(set(bits.values()))}
    layer_bits = json.dumps(bits, separators=(",", ":"))
    if len(layer_bits) <= limit:
        out["layer_bits"] = layer_bits
    else:  # a model with thousands of Linears: the event stays small, the artifact's config.json has them
        out["layer_bits_in_artifact"] = True
    return out


def _autoround() -> Any:
    from auto_round import AutoRound

    return AutoRound


def _autoscheme(config: MixedConfig, nsamples: int, seqlen: int, calibration: Path, device: str) -> Any:
    try:
        from auto_round.auto_scheme import AutoScheme
        from auto_round.schemes import QuantizationScheme
    except ImportError as exc:
        raise JobError(
            f"mixed: auto-round has no AutoScheme here ({exc}); use strategy=knapsack", "unsupported"
        ) from exc
    options = [QuantizationScheme(bits=b, group_size=config.group_size, sym=True) for b in config.widths]
    return AutoScheme(
        avg_bits=config.avg_bits, options=options, ignore_scale_zp_bits=True, nsamples=nsamples, seqlen=seqlen,
        dataset=str(calibration), device_map=device, enable_torch_compile=False,
    )  # fmt: skip
