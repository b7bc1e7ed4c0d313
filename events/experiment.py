"""Events about an experiment as a whole and the coordinator's decisions."""

from __future__ import annotations

from typing import Any, Literal

from greenai.events.envelope import EventData
from greenai.events.registry import register
from pydantic import BaseModel, ConfigDict, Field


@register
class RunRequested(EventData):
    """A user asked for an experiment: what to compress, for which benchmark, within what budget."""

    TYPE = "run.requested"
    model: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    episodes: int = Field(ge=1, le=1000)
    policy: str = "grid"
    limit: int | None = Field(default=None, ge=1, description="Benchmark items per evaluation.")
    seed: int = 0
    calibration_samples: int = Field(default=32, ge=1)
    calibration_seq_len: int = Field(default=256, ge=8)
    requested_by: str = "cli"


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    source: Literal["gguf", "local", "hub"]
    location: str
    architecture: str
    family: str
    num_parameters: int | None
    num_layers: int | None
    hidden_size: int | None
    intermediate_size: int | None
    num_attention_heads: int | None
    num_key_value_heads: int | None
    vocab_size: int | None
    context_length: int | None
    dtype: str | None
    tied_embeddings: bool | None
    size_bytes: int | None


@register
class SpecInferred(EventData):
    TYPE = "spec.inferred"
    spec: ModelSpec


@register
class EpisodeDecided(EventData):
    """One decision of the policy: which compression to try in this episode, and why."""

    TYPE = "episode.decided"
    episode: int = Field(ge=1)
    action: Literal["quantize", "end"]
    method: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    policy: str
    rationale: str


@register
class ExperimentCompleted(EventData):
    TYPE = "experiment.completed"
    reason: str
    episodes_run: int


@register
class ExperimentFailed(EventData):
    """The experiment cannot go on (unknown model, no data); the reason says what to fix."""

    TYPE = "experiment.failed"
    reason: str
    error_type: str
