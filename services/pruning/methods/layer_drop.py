"""Structured: drop whole decoder layers whose output is most like their input (ShortGPT's block
influence, 1 − cos(x_in, x_out) on calibration text). The saved model has fewer layers, so it is
really smaller and faster."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from greenai.services.pruning.calibrated import calibration_batches, layerwise
from greenai.services.pruning.methods.base import PruneConfig, PruneContext, PruningMethod
from greenai.shared.jobs import JobError
from greenai.shared.model_layout import layout_of


class LayerDropConfig(PruneConfig):
    layers: int = Field(default=2, ge=1, description="How many decoder layers to remove.")


def block_influence(model: Any, batches: list[Any]) -> list[float]:
    import torch

    influence: list[float] = []

    def on_layer(index: int, layer: Any, inputs: list[tuple[Any, dict[str, Any]]]) -> None:
        sims = []
        for hidden, kwargs in inputs:
            out = layer(hidden, **kwargs)
            out = out[0] if isinstance(out, tuple) else out
            sims.append(torch.nn.functional.cosine_similarity(hidden.float(), out.float(), dim=-1).mean())
        influence.append(float(1 - torch.stack(sims).mean()))

    layerwise(model, batches, on_layer)
    return influence


def drop_layers(model: Any, drop: set[int]) -> None:
    """Remove blocks `drop`; the layout renumbers the KV-cache slots and fixes the config."""
    layout = layout_of(model)
    keep = [layer for i, layer in enumerate(layout.blocks) if i not in drop]
    layout.set_blocks(keep, drop)


class LayerDrop(PruningMethod):
    name = "layer_drop"
    config_class = LayerDropConfig
    needs_calibration = True
    structured = True

    def prune(self, model: Any, tokenizer: Any, config: PruneConfig, ctx: PruneContext) -> None:
        assert isinstance(config, LayerDropConfig) and ctx.calibration
        total = len(layout_of(model).blocks)
        if config.layers >= total:
            raise JobError(f"layer_drop: cannot remove {config.layers} of {total} layers", "invalid")
        influence = block_influence(model, calibration_batches(tokenizer, ctx.calibration, ctx.seq_len, ctx.device))
        order = sorted(range(total), key=lambda i: influence[i])
        drop_layers(model, set(order[: config.layers]))
