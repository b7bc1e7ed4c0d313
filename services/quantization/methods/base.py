"""The one interface every quantization method implements, as transformers' HfQuantizer does."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from greenai.shared.jobs import JobError
from pydantic import BaseModel, ConfigDict, ValidationError


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


class QuantizationMethod(ABC):
    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]]
    requirements: ClassVar[Requirements]
    needs_calibration: ClassVar[bool] = False

    def parse(self, params: dict[str, Any]) -> MethodConfig:
        try:
            return self.config_class.model_validate(params)
        except ValidationError as exc:
            raise JobError(f"{self.name}: invalid parameters: {exc.errors(include_url=False)}", "invalid") from exc

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

    def check_model(self, config: MethodConfig, model_config: Any) -> None:
        """Refuse settings the model's shape cannot take (e.g. a group size that does not divide it)."""
        return None

    @abstractmethod
    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> None:
        """Write a folder `AutoModelForCausalLM.from_pretrained(ctx.output)` loads."""
