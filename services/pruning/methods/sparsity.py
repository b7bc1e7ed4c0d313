"""The sparsity pattern shared by the unstructured methods: a fraction, or N:M (e.g. 2:4)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from greenai.services.pruning.methods.base import PruneConfig, n_m_mask, unstructured_mask


class SparsityConfig(PruneConfig):
    sparsity: float = Field(default=0.5, gt=0, lt=1, description="Fraction of weights removed (unstructured).")
    pattern: str | None = Field(default=None, description="'N:M', e.g. '2:4'; overrides sparsity.")

    @field_validator("pattern")
    @classmethod
    def _n_m(cls, value: str | None) -> str | None:
        if value is not None:
            match = re.fullmatch(r"(\d+):(\d+)", value)
            if not match or not 0 < int(match[1]) < int(match[2]):
                raise ValueError("pattern must be 'N:M' with 0 < N < M, e.g. '2:4'")
        return value

    def mask(self, score: object) -> object:
        if self.pattern:
            n, m = (int(x) for x in self.pattern.split(":"))
            return n_m_mask(score, n, m)
        return unstructured_mask(score, self.sparsity)
