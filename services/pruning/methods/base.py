"""The one interface every pruning method implements, and the masks they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from greenai.shared.job_contract import parse_params
from greenai.shared.jobs import JobError
from greenai.shared.model_layout import ALL_FAMILIES, Projection, layout_of, require_supported


class PruneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class PruneContext:
    calibration: list[str] | None
    seq_len: int
    seed: int
    device: str


class PruningMethod(ABC):
    name: ClassVar[str]
    config_class: ClassVar[type[PruneConfig]]
    needs_calibration: ClassVar[bool] = False
    structured: ClassVar[bool] = False  # True: the saved model has fewer parameters
    # the model-layout families (shared.model_layout) this method handles; anything else is
    # refused as `unsupported` before the model is loaded
    families: ClassVar[frozenset[str]] = ALL_FAMILIES

    def parse(self, params: dict[str, Any]) -> PruneConfig:
        return parse_params(self.name, self.config_class, params)

    def check_family(self, model_type: object) -> str:
        """The model's family, or `UnsupportedArchitecture` (a JobError, reason `unsupported`)."""
        return require_supported(self.name, self.families, model_type)

    @abstractmethod
    def prune(self, model: Any, tokenizer: Any, config: PruneConfig, ctx: PruneContext) -> None:
        """Prune `model` in place (zeroing weights, or removing layers and channels)."""


def unstructured_mask(score: Any, sparsity: float) -> Any:
    """True where a weight is pruned: the lowest-scoring `sparsity` fraction of each output row
    (row-wise comparison, as Wanda does; it keeps every output neuron alive)."""
    import torch

    k = int(score.shape[1] * sparsity)
    mask = torch.zeros_like(score, dtype=torch.bool)
    if k == 0:
        return mask
    idx = torch.topk(score, k, dim=1, largest=False).indices
    return mask.scatter_(1, idx, True)


def n_m_mask(score: Any, n: int, m: int) -> Any:
    """True where pruned: in every group of `m` consecutive inputs, all but the `n` highest scores."""
    import torch

    rows, cols = score.shape
    if cols % m:
        raise JobError(f"N:M sparsity needs the input width ({cols}) to be a multiple of M={m}", "invalid")
    groups = score.reshape(rows, cols // m, m)
    drop = torch.topk(groups, m - n, dim=2, largest=False).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, drop, True)
    return mask.reshape(rows, cols)


def decoder_linears(model: Any) -> dict[str, Projection]:
    """The linear layers inside the decoder blocks, by full name, each with its weight as [out, in]:
    what unstructured pruning touches (never embeddings or lm_head)."""
    return layout_of(model).linears()
