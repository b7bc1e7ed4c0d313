"""The interface every decision policy implements: the experiment so far in, one decision out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory


@dataclass(frozen=True)
class Decision:
    action: str  # "quantize" | "end"
    method: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""


class Policy(ABC):
    name: ClassVar[str]

    @abstractmethod
    def decide(self, state: ExperimentState, skills: SkillMemory) -> Decision:
        """Must be a function of its inputs, so a restarted coordinator decides the same."""
