"""Structured: remove MLP channels (rows of gate/up, columns of down; GPT-2's c_fc/c_proj and
Phi-3's fused gate_up the same way, through the model layout) with the least
|activation| × ‖down column‖, the same number in every layer. The saved model has a smaller
intermediate size, so it is really smaller and faster."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from greenai.services.pruning.calibrated import calibration_batches, layerwise, linear_inputs
from greenai.services.pruning.methods.base import PruneConfig, PruneContext, PruningMethod
from greenai.shared.jobs import JobError
from greenai.shared.model_layout import MlpProjections, layout_of


class MlpChannelConfig(PruneConfig):
    ratio: float = Field(default=0.25, gt=0, lt=1, description="Fraction of MLP channels removed.")
    multiple_of: int = Field(default=64, ge=1, description="Keep a channel count that kernels and group sizes like.")


def keep_channels(mlp: MlpProjections, keep: Any, width: int) -> None:
    """Keep MLP channels `keep` of `width`: output rows of every input projection (in each fused
    part: Phi-3's gate_up holds channel j at rows j and width + j) and input columns of the output."""
    import torch

    for proj, parts in mlp.inputs:
        if proj.out_features != parts * width:
            raise JobError(
                f"mlp_channels: {proj.name} has {proj.out_features} outputs, expected {parts} × {width}", "unsupported"
            )
        proj.keep_outputs(torch.cat([keep + part * width for part in range(parts)]))
    mlp.output.keep_inputs(keep)


class MlpChannelPruning(PruningMethod):
    name = "mlp_channels"
    config_class = MlpChannelConfig
    needs_calibration = True
    structured = True

    def prune(self, model: Any, tokenizer: Any, config: PruneConfig, ctx: PruneContext) -> None:
        assert isinstance(config, MlpChannelConfig) and ctx.calibration
        import torch

        layout = layout_of(model)
        width = layout.intermediate_size
        kept = max(config.multiple_of, int(width * (1 - config.ratio)) // config.multiple_of * config.multiple_of)
        if kept >= width:
            raise JobError(
                f"mlp_channels: ratio {config.ratio} with multiple_of {config.multiple_of} removes nothing "
                f"from an MLP of width {width}",
                "invalid",
            )
        batches = calibration_batches(tokenizer, ctx.calibration, ctx.seq_len, ctx.device)

        def on_layer(index: int, layer: Any, inputs: list[tuple[Any, dict[str, Any]]]) -> None:
            sq: list[Any] = []

            mlp = layout.mlp(layer)

            def visit(name: str, module: Any, x: Any) -> None:
                if name == mlp.output.name:
                    s = x.detach().float().reshape(-1, x.shape[-1]).pow(2).sum(0)
                    sq.append(s)

            linear_inputs(layer, inputs, visit)
            importance = torch.stack(sq).sum(0).sqrt() * mlp.output.weight.float().norm(dim=0)
            keep = torch.sort(torch.topk(importance, kept).indices).values
            keep_channels(mlp, keep, width)

        layerwise(model, batches, on_layer)
        layout.set_intermediate_size(kept)
