"""Structured: remove MLP channels (rows of gate/up, columns of down) with the least
|activation| × ‖down column‖, the same number in every layer. The saved model has a smaller
intermediate size, so it is really smaller and faster."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from greenai.services.pruning.calibrated import calibration_batches, layerwise, linear_inputs
from greenai.services.pruning.methods.base import PruneConfig, PruneContext, PruningMethod


class MlpChannelConfig(PruneConfig):
    ratio: float = Field(default=0.25, gt=0, lt=1, description="Fraction of MLP channels removed.")
    multiple_of: int = Field(default=64, ge=1, description="Keep a channel count that kernels and group sizes like.")


def _shrink(linear: Any, keep: Any, dim: int) -> None:
    import torch

    weight = linear.weight.data.index_select(dim, keep).clone()
    linear.weight = torch.nn.Parameter(weight)
    if dim == 0:
        linear.out_features = weight.shape[0]
        if linear.bias is not None:
            linear.bias = torch.nn.Parameter(linear.bias.data.index_select(0, keep).clone())
    else:
        linear.in_features = weight.shape[1]


class MlpChannelPruning(PruningMethod):
    name = "mlp_channels"
    config_class = MlpChannelConfig
    needs_calibration = True
    structured = True

    def prune(self, model: Any, tokenizer: Any, config: PruneConfig, ctx: PruneContext) -> None:
        assert isinstance(config, MlpChannelConfig) and ctx.calibration
        import torch

        width = model.config.intermediate_size
        kept = max(config.multiple_of, int(width * (1 - config.ratio)) // config.multiple_of * config.multiple_of)
        batches = calibration_batches(tokenizer, ctx.calibration, ctx.seq_len, ctx.device)

        def on_layer(index: int, layer: Any, inputs: list[tuple[Any, dict[str, Any]]]) -> None:
            sq: list[Any] = []

            def visit(name: str, module: Any, x: Any) -> None:
                if name == "mlp.down_proj":
                    s = x.detach().float().reshape(-1, x.shape[-1]).pow(2).sum(0)
                    sq.append(s)

            linear_inputs(layer, inputs, visit)
            mlp = layer.mlp
            importance = torch.stack(sq).sum(0).sqrt() * mlp.down_proj.weight.float().norm(dim=0)
            keep = torch.sort(torch.topk(importance, kept).indices).values
            _shrink(mlp.gate_proj, keep, 0)
            _shrink(mlp.up_proj, keep, 0)
            _shrink(mlp.down_proj, keep, 1)

        layerwise(model, batches, on_layer)
        model.config.intermediate_size = kept
