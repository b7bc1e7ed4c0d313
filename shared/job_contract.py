"""The typed contract an agent hands its step job's child: the method's validated config, the fetched
source folder, where to write, the seed and the device.

Every agent validates with its own method registry (an agent never imports another agent's code), so
a contract asks its subclass for `method_of(name)` and nothing here knows any agent. What crosses the
process boundary (shared.jobs.run_in_child) is the subclass's frozen dataclass, pickled by reference
to its module, never an untyped dict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

from pydantic import BaseModel, ValidationError

from greenai.shared.calibration import calibration_texts
from greenai.shared.jobs import JobError

ConfigT = TypeVar("ConfigT", bound=BaseModel)
ConfigT_co = TypeVar("ConfigT_co", bound=BaseModel, covariant=True)


def parse_params(method: str, config_class: type[ConfigT], params: dict[str, Any]) -> ConfigT:
    """`params` as `config_class`, or a JobError 'invalid' naming the method and what was wrong: what every
    method's `parse` does (bus input, so never retried)."""
    try:
        return config_class.model_validate(params)
    except ValidationError as exc:
        raise JobError(f"{method}: invalid parameters: {exc.errors(include_url=False)}", "invalid") from exc


class ValidatesParams(Protocol[ConfigT_co]):
    """A method as an agent's registry gives it: its config class, and a parse that raises a JobError
    'invalid' for parameters that config does not take."""

    @property
    def config_class(self) -> type[ConfigT_co]: ...

    def parse(self, params: dict[str, Any]) -> ConfigT_co: ...


@dataclass(frozen=True, kw_only=True)
class StepJob(ABC, Generic[ConfigT]):
    """What every step job's child needs; keyword-only, so that subclasses add fields in any order."""

    method: str
    config: ConfigT
    source: str
    target: str
    seed: int
    device: str

    @classmethod
    @abstractmethod
    def method_of(cls, name: str) -> ValidatesParams[ConfigT]:
        """The method `name` from the agent's own registry (a JobError 'invalid' for an unknown one)."""

    @classmethod
    def validated(cls, method: str, params: dict[str, Any]) -> ConfigT:
        """`params` as the method's own config: the agent refuses bad parameters before any work."""
        return cls.method_of(method).parse(params)

    def check_config(self) -> None:
        """Refuse, in the child and before any work, a job whose config is another method's: a forged
        or mixed-up contract must never run one method with another's settings."""
        if not isinstance(self.config, self.method_of(self.method).config_class):
            raise JobError(f"{self.method}: the job carries a {type(self.config).__name__}", "invalid")


@dataclass(frozen=True, kw_only=True)
class CalibratedStepJob(StepJob[ConfigT]):
    """A step that may read calibration text (quantization, pruning): how much, and from where."""

    data_dir: str | None
    calibration_samples: int
    calibration_seq_len: int

    @classmethod
    def parse(
        cls,
        method: str,
        params: dict[str, Any],
        source: str,
        target: str,
        data_dir: str | None,
        calibration_samples: int,
        calibration_seq_len: int,
        seed: int,
        device: str,
    ) -> Self:
        """The job with `params` validated by the method's own config (a JobError 'invalid' if not)."""
        return cls(
            method=method, config=cls.validated(method, params), source=source, target=target, seed=seed,
            device=device, data_dir=data_dir, calibration_samples=calibration_samples,
            calibration_seq_len=calibration_seq_len,
        )  # fmt: skip

    def calibration(self, needed: bool) -> list[str] | None:
        """The seeded calibration samples if the method `needed` them; without a data dir, 'invalid'."""
        if not needed:
            return None
        if self.data_dir is None:
            raise JobError(f"{self.method} needs calibration text: set the data dir (GREENAI_DATA_DIR)", "invalid")
        return calibration_texts(Path(self.data_dir), self.calibration_samples, self.calibration_seq_len, self.seed)
