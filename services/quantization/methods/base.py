"""The one interface every quantization method implements, as transformers' HfQuantizer does."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from greenai.events.capabilities import MethodOffer
from greenai.events.capabilities import Requirements as OfferedRequirements
from greenai.services.quantization.methods.storage import StorageDtype, store_unquantized
from greenai.shared.capabilities import Offered
from greenai.shared.job_contract import parse_params
from greenai.shared.jobs import JobError
from greenai.shared.model_layout import family_of, input_widths

Metrics = dict[str, float | int | str | bool]  # step-specific figures for the completion event's `metrics`


class MethodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Requirements:
    """What a method needs from the machine; the agent refuses a job this machine cannot run."""

    cpu: bool
    cuda: bool
    memory_factor: float  # peak memory ≈ factor × float32 model size
    note: str = ""


@dataclass(frozen=True)
class QuantizeContext:
    source: Path  # a loadable Hugging Face folder
    output: Path  # an empty folder to write the artifact into
    calibration: list[str] | None
    seed: int
    device: str  # "cpu" or "cuda"


def check_group_size(method: str, group_size: int, model_config: Any) -> None:
    """Group-wise methods need the group size to divide every quantized width (SmolLM2: 576, 1536)."""
    if group_size <= 0:
        return
    if family_of(getattr(model_config, "model_type", None)):  # the layout knows GPT-2's n_inner, head_dim
        widths = input_widths(model_config)
    else:
        widths = {model_config.hidden_size, getattr(model_config, "intermediate_size", model_config.hidden_size)}
    bad = sorted(w for w in widths if w % group_size)
    if bad:
        raise JobError(
            f"{method}: group size {group_size} does not divide the layer width(s) {bad}; "
            "choose a divisor (e.g. 64 or 32)",
            "invalid",
        )


class QuantizationMethod(Offered, ABC):
    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]]
    requirements: ClassVar[Requirements]
    needs_calibration: ClassVar[bool] = False
    # how the tensors the method leaves unquantized are stored (None: as the method wrote them)
    unquantized_dtype: ClassVar[StorageDtype | None] = "bfloat16"

    @classmethod
    def catalogue_entry(cls) -> MethodOffer:
        """What the quantization agent announces for this method."""
        r = cls.requirements
        return cls.offer(
            "quantize", OfferedRequirements(cpu=r.cpu, cuda=r.cuda, memory_factor=r.memory_factor, note=r.note)
        )

    def parse(self, params: dict[str, Any]) -> MethodConfig:
        return parse_params(self.name, self.config_class, params)

    def uses_calibration(self, config: MethodConfig) -> bool:
        return self.needs_calibration

    def check_hardware(self, device: str) -> None:
        if device == "cpu" and not self.requirements.cpu:
            raise JobError(
                f"{self.name} needs a CUDA GPU and this machine has none. {self.requirements.note}".strip(),
                "unsupported",
            )
        if device == "cuda" and not self.requirements.cuda:
            raise JobError(f"{self.name} does not run on CUDA here. {self.requirements.note}".strip(), "unsupported")

    def check_memory(self, source_bytes: int, available_bytes: int) -> None:
        """Refuse a job whose estimated peak memory this machine does not have."""
        need = self.requirements.memory_factor * source_bytes
        if need > available_bytes:
            raise JobError(
                f"{self.name} needs about {need / 2**30:.1f} GiB for this model "
                f"({self.requirements.memory_factor}x its {source_bytes / 2**30:.2f} GiB); "
                f"this machine has {available_bytes / 2**30:.1f} GiB available",
                "unsupported",
            )

    def check_family(self, model_config: Any) -> None:
        """Refuse, before any weights load, a model type the method is not known to handle."""
        model_type = getattr(model_config, "model_type", None)
        if self.families is not None and model_type not in self.families:
            raise JobError(
                f"{self.name} does not support model type {model_type!r}; it supports {sorted(self.families)}",
                "unsupported",
            )

    def check_model(self, config: MethodConfig, model_config: Any) -> None:
        """Refuse settings the model's shape cannot take (e.g. a group size that does not divide it)."""
        return None

    def store_unquantized(self, ctx: QuantizeContext) -> None:
        """After `quantize`: embeddings, lm_head and norms it left in float32 are stored in 16 bit."""
        if self.unquantized_dtype is not None:
            store_unquantized(ctx.output, ctx.source, self.unquantized_dtype)

    @abstractmethod
    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> Metrics | None:
        """Write a folder `AutoModelForCausalLM.from_pretrained(ctx.output)` loads; optionally return
        figures for the completion event's `metrics` (e.g. the per-layer bits a method chose)."""
