"""The interface every decision policy implements: the experiment so far in, one decision out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from greenai.events import EventData
from greenai.events.experiment import Step, StepKind
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory


@dataclass(frozen=True)
class Decision:
    action: Literal["compress", "end"]
    steps: tuple[Step, ...] = ()
    rationale: str = ""
    search_point: dict[str, Any] | None = None  # the sampler's parameters, kept in the event
    search_space: dict[str, list[Any]] | None = None  # each parameter's choices then, kept in the event
    notes: tuple[EventData, ...] = ()  # events about how the decision was reached (LLM calls, fallbacks)
    policy: str | None = None  # who decided, when not the run's policy (a fallback)

    @classmethod
    def single(cls, kind: StepKind, method: str, params: dict[str, Any], rationale: str) -> Decision:
        return cls("compress", (Step(kind=kind, method=method, params=params),), rationale)


class Policy(ABC):
    name: ClassVar[str]

    def ready(self, state: ExperimentState, offers: Offers) -> bool:
        """Whether the offers on the bus are enough to decide now (else the coordinator waits a while
        for agents to announce, `capability_wait_s`): by default, any method at all."""
        return bool(offers)

    @abstractmethod
    def decide(self, state: ExperimentState, skills: SkillMemory, offers: Offers) -> Decision:
        """Must be a function of its inputs, so a restarted coordinator decides the same.

        `offers`: the methods the live agents announce; a method not in it is never proposed.
        """
