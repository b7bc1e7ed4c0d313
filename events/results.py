"""Results: artifacts produced and measurements taken."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from greenai.events.envelope import EventData
from greenai.events.registry import register


class Artifact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    bytes: int = Field(ge=0)
    sha256: str


class StepCompleted(EventData):
    """A compression step's output artifact and what the step itself cost."""

    job_id: str
    episode: int
    step: int = 0
    method: str
    params: dict[str, Any]
    artifact: Artifact
    bits_per_weight: float | None
    wall_s: float
    peak_rss_mb: float
    metrics: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="Step-specific: sparsity, train loss, whether an adapter was merged, ..."
    )


@register
class QuantizeCompleted(StepCompleted):
    TYPE = "quantize.completed"


@register
class PruneCompleted(StepCompleted):
    TYPE = "prune.completed"


@register
class LoraCompleted(StepCompleted):
    TYPE = "lora.completed"


class Latency(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    prefill_ms_per_token: float
    decode_ms_per_token: float
    decode_tokens_per_s: float
    device: str


class Energy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    joules: float
    mode: Literal["measured", "estimated", "unavailable"]  # unavailable: the tracker gave no reading (detail says why)
    detail: str


class TaskScore(BaseModel):
    """One benchmark's score on a candidate; perplexity-like metrics are lower-is-better."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    metric: str
    value: float
    higher_is_better: bool = True
    n: int = Field(ge=0)
    stderr: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


@register
class EvaluateCompleted(EventData):
    TYPE = "evaluate.completed"
    job_id: str
    episode: int
    task: str
    metric: str
    accuracy: float = Field(ge=0, le=1)
    accuracy_stderr: float | None
    ci_low: float
    ci_high: float
    n: int = Field(ge=0)
    limit: int | None
    latency: Latency
    peak_rss_mb: float
    size_bytes: int
    energy: Energy
    wall_s: float
    artifact_sha256: str | None = None
    cached: bool = Field(
        default=False, description="Reused from an earlier run of the same artifact, task, subset and seed."
    )
    secondary: list[TaskScore] = Field(default_factory=list)
    purpose: Literal["episode", "promotion"] = "episode"
    cuda_peak_mb: float | None = Field(default=None, description="torch.cuda.max_memory_allocated on a GPU.")
