"""Maps pruning method names to classes."""

from __future__ import annotations

from greenai.services.pruning.methods.base import PruningMethod
from greenai.services.pruning.methods.layer_drop import LayerDrop
from greenai.services.pruning.methods.magnitude import MagnitudePruning
from greenai.services.pruning.methods.mlp_channels import MlpChannelPruning
from greenai.services.pruning.methods.sparsegpt import SparseGPTPruning
from greenai.services.pruning.methods.wanda import WandaPruning
from greenai.shared.jobs import JobError

METHODS: dict[str, type[PruningMethod]] = {
    cls.name: cls for cls in (MagnitudePruning, WandaPruning, SparseGPTPruning, LayerDrop, MlpChannelPruning)
}


def get_method(name: str) -> PruningMethod:
    try:
        return METHODS[name]()
    except KeyError:
        raise JobError(f"unknown pruning method {name!r}; known: {', '.join(sorted(METHODS))}", "invalid") from None
