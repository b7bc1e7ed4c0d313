"""Wanda (Sun et al. 2023): prune by |W| × ‖X‖ per input channel, compared within each output row.

No weight update and no retraining: one calibration pass per layer.
"""

from __future__ import annotations

from typing import Any

from greenai.services.pruning.calibrated import calibration_batches, layerwise, linear_inputs
from greenai.services.pruning.methods.base import PruneConfig, PruneContext, PruningMethod
from greenai.services.pruning.methods.sparsity import SparsityConfig
from greenai.shared.model_layout import layout_of


def wanda_score(weight: Any, input_sq_norm: Any) -> Any:
    """|W_ij| · ‖X_j‖₂ — the paper's metric, from the summed squares of each input feature."""
    return weight.abs() * input_sq_norm.sqrt().reshape(1, -1)


class WandaPruning(PruningMethod):
    name = "wanda"
    config_class = SparsityConfig
    needs_calibration = True

    def prune(self, model: Any, tokenizer: Any, config: PruneConfig, ctx: PruneContext) -> None:
        assert isinstance(config, SparsityConfig) and ctx.calibration
        import torch

        layout = layout_of(model)
        batches = calibration_batches(tokenizer, ctx.calibration, ctx.seq_len, ctx.device)

        def on_layer(index: int, layer: Any, inputs: list[tuple[Any, dict[str, Any]]]) -> None:
            norms: dict[str, Any] = {}

            def visit(name: str, module: Any, x: Any) -> None:
                sq = x.detach().float().reshape(-1, x.shape[-1]).pow(2).sum(0)
                norms[name] = norms[name] + sq if name in norms else sq

            linear_inputs(layer, inputs, visit)
            with torch.no_grad():
                for name, proj in layout.block_linears(layer).items():
                    if name in norms:
                        mask = config.mask(wanda_score(proj.weight.float(), norms[name]))
                        proj.weight[mask] = 0

        layerwise(model, batches, on_layer)
