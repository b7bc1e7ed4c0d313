"""Magnitude pruning: remove the smallest |w|, per layer (row-wise) or with one global threshold."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from greenai.services.pruning.methods.base import PruneConfig, PruneContext, PruningMethod, decoder_linears
from greenai.services.pruning.methods.sparsity import SparsityConfig


class MagnitudeConfig(SparsityConfig):
    scope: Literal["layer", "global"] = Field(default="layer", description="global: one threshold for all layers")


class MagnitudePruning(PruningMethod):
    name = "magnitude"
    config_class = MagnitudeConfig

    def prune(self, model: Any, tokenizer: Any, config: PruneConfig, ctx: PruneContext) -> None:
        assert isinstance(config, MagnitudeConfig)
        import torch

        linears = decoder_linears(model)
        with torch.no_grad():
            if config.scope == "global" and not config.pattern:
                scores = torch.cat([p.weight.abs().flatten() for p in linears.values()])
                k = int(scores.numel() * config.sparsity)
                threshold = torch.kthvalue(scores.float(), k).values if k else scores.min() - 1
                for p in linears.values():
                    p.weight[p.weight.abs() <= threshold] = 0
                return
            for p in linears.values():
                p.weight[config.mask(p.weight.abs())] = 0  # row-wise over [out, in], Conv1D included
