"""What an agent offers, announced by the agent itself: the one catalogue of methods.

Each agent appends `agent.announced` when it starts and again every `interval_s` (its heartbeat),
under the experiment `_agents-<role>`: a role may publish only there, so no agent can speak for
another. The coordinator folds these into the live catalogue (`projections.capabilities`) and builds
its search space, the LLM's method list and its feasibility check from it; nothing in the
coordinator names a method.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from greenai.events.envelope import EventData
from greenai.events.registry import register

AGENTS_EXPERIMENT_PREFIX = "_agents-"
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,30}$"
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Kind = Annotated[str, StringConstraints(pattern=KIND_PATTERN)]
Scalar = bool | int | float | str | None
MAX_CHOICES = 16


def agents_experiment(role: str) -> str:
    """Where a role's announcements live (one subject per role, which its permissions pin)."""
    return f"{AGENTS_EXPERIMENT_PREFIX}{role}"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Requirements(Frozen):
    cpu: bool = True
    cuda: bool = True
    memory_factor: float = Field(default=1.0, ge=0, le=100, description="Peak memory ≈ factor × float32 model size.")
    note: str = Field(default="", max_length=400)


class Preset(Frozen):
    """A configuration the method's owner recommends, in the order a cautious expert would try it.

    `after`: for a recovery method, the kind of compression step it follows in a pipeline.
    """

    params: dict[str, Scalar] = Field(default_factory=dict, max_length=16)
    rationale: str = Field(max_length=300)
    rank: int = Field(ge=0, le=10_000, description="Lower is tried earlier by the grid policy.")
    after: Kind | None = None


Grid = dict[str, list[Scalar]]


class MethodOffer(Frozen):
    """One method as its agent offers it: parameters, the values worth searching, requirements."""

    kind: Kind
    name: Name
    stage: Literal["compress", "recover"] = "compress"
    order: int = Field(default=50, ge=0, le=100, description="Place among compression steps in a pipeline.")
    group: str = Field(max_length=60, description="The family a bandit treats as one arm.")
    summary: str = Field(default="", max_length=300)
    params_schema: dict[str, Any] = Field(default_factory=dict, description="JSON schema of the method's config.")
    search: list[Grid] = Field(default_factory=list, max_length=8, description="Union of grids: the full space.")
    fast_search: list[Grid] | None = Field(
        default=None, max_length=8, description="The cpu-fast space; None: too slow for it."
    )
    presets: list[Preset] = Field(default_factory=list, max_length=16)
    families: list[Name] | None = Field(default=None, description="Model families it supports; None: any.")
    requirements: Requirements = Requirements()
    divides_widths: list[str] = Field(default_factory=list, description="Params that must divide the layer widths.")
    removes_layers: str | None = Field(default=None, description="The param counting decoder layers removed.")

    @field_validator("search", "fast_search")
    @classmethod
    def _bounded(cls, grids: list[Grid] | None) -> list[Grid] | None:
        for grid in grids or []:
            if len(grid) > 8 or any(not values or len(values) > MAX_CHOICES for values in grid.values()):
                raise ValueError(f"a search grid has at most 8 params of 1-{MAX_CHOICES} values each")
        return grids


class Hardware(Frozen):
    host: str = Field(max_length=200)
    device: Literal["cpu", "cuda"]
    cpus: int = Field(ge=1)
    memory_bytes: int = Field(ge=0)
    gpu: str | None = Field(default=None, max_length=200)


@register
class AgentAnnounced(EventData):
    """An agent instance is up and offers these methods for step kind `kind`; repeated as a heartbeat."""

    TYPE = "agent.announced"
    agent: Name = Field(description="The agent's role (its NATS identity).")
    instance: str = Field(max_length=200)
    kind: Kind
    methods: list[MethodOffer] = Field(default_factory=list, max_length=64)
    hardware: Hardware
    interval_s: float = Field(gt=0, le=3600, description="The next announcement comes within this.")

    @field_validator("methods")
    @classmethod
    def _one_kind(cls, methods: list[MethodOffer], info: Any) -> list[MethodOffer]:
        kind = info.data.get("kind")
        if kind is not None and any(m.kind != kind for m in methods):
            raise ValueError(f"an agent of kind {kind!r} may offer only {kind!r} methods")
        return methods
