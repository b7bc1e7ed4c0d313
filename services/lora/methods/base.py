"""The one interface every LoRA recovery method implements, like quantization's and pruning's.

A method carries its own catalogue attributes (`Offered`: summary, search grids, presets after a
compression step, requirements), refuses a source it cannot train before any weights load
(`check_source`, from config.json alone), and writes a folder `from_pretrained(folder)` loads.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from greenai.events.capabilities import MethodOffer, Requirements
from greenai.services.lora.train import LoraParams, TrainResult
from greenai.shared.capabilities import Offered
from greenai.shared.job_contract import parse_params
from greenai.shared.jobs import JobError

KIND = "lora"


@dataclass(frozen=True)
class LoraContext:
    source: Path  # a loadable Hugging Face folder: the model to recover
    output: Path  # an empty folder to write the artifact into
    texts: list[str]  # training text
    seed: int
    device: str  # "cpu" or "cuda"


def source_quantization(source: Path) -> dict[str, Any] | None:
    """The source's `quantization_config`, or None for a float model (config.json only)."""
    try:
        config = json.loads((source / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise JobError(f"the source has no readable config.json: {exc}", "invalid") from exc
    if not isinstance(config, dict):
        raise JobError("the source's config.json is not an object", "invalid")
    qc = config.get("quantization_config")
    if qc and not isinstance(qc, dict):
        raise JobError("the source's quantization_config is not an object", "invalid")
    return dict(qc) if qc else None


class LoraMethod(Offered, ABC):
    name: ClassVar[str]
    config_class: ClassVar[type[LoraParams]] = LoraParams
    group = "lora"
    stage = "recover"
    requirements: ClassVar[Requirements]
    kept_as: ClassVar[Literal["merged", "adapter"]]

    @classmethod
    def catalogue_entry(cls) -> MethodOffer:
        """What the LoRA agent announces for this method."""
        return cls.offer(KIND, cls.requirements)

    def parse(self, params: dict[str, Any]) -> LoraParams:
        return parse_params(self.name, self.config_class, params)

    @abstractmethod
    def check_source(self, quantization: dict[str, Any] | None) -> None:
        """Refuse, before any weights load, a source this method cannot train (a JobError)."""

    @abstractmethod
    def train_to(self, config: LoraParams, tokenizer: Any, ctx: LoraContext) -> TrainResult:
        """Train on `ctx.texts` and write the recovered model (and tokenizer) into `ctx.output`."""
