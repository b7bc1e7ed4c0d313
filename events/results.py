"""Results: artifacts produced (content-addressed, in the object store) and measurements taken."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from greenai.events.artifacts import Artifact, ArtifactV1
from greenai.events.envelope import EventData
from greenai.events.jobs import STEP_TYPE, JobId, check_step_kind
from greenai.events.registry import register, register_family


class Energy(BaseModel):
    """Joules of a piece of work and how they were obtained: `measured` by a hardware counter (RAPL,
    NVML) or `estimated` from codecarbon's power constants (shared/energy.py); the detail says which."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    joules: float
    mode: Literal["measured", "estimated", "unavailable"]  # unavailable: the tracker gave no reading (detail says why)
    detail: str
    seconds: float | None = Field(default=None, ge=0, description="Wall time the reading covers.")


class _StepCompletedFields(EventData):
    """The fields versions 2 and 3 of a step's completion share."""

    job_id: JobId
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


class StepCompleted(_StepCompletedFields):
    """A compression step's output artifact (uploaded before this event) and what the step cost, its
    energy included (version 3), so a candidate's production energy can be weighed against its savings."""

    VERSION = 3
    energy: Energy | None = Field(
        default=None, description="The step's job, by shared/energy.py; None: not recorded (read from version 2)."
    )


class StepCompletedV2(_StepCompletedFields):
    """Version 2: no energy. Read as version 3 with the energy not recorded."""

    VERSION = 2

    def upcast(self) -> StepCompleted:
        return STEP_COMPLETIONS_BY_TYPE[self.TYPE].model_validate(self.model_dump())


class StepCompletedV1(EventData):
    """Version 1: the artifact as a host path. Read as version 2 with an artifact the store lacks."""

    job_id: JobId
    episode: int
    step: int = 0
    method: str
    params: dict[str, Any]
    artifact: ArtifactV1
    bits_per_weight: float | None
    wall_s: float
    peak_rss_mb: float
    metrics: dict[str, float | int | str | bool] = Field(default_factory=dict)

    def upcast(self) -> StepCompletedV2:
        cls = step_completion_v2_class(self.TYPE.split(".")[0])
        return cls.model_validate({**self.model_dump(exclude={"artifact"}), "artifact": self.artifact.upcast()})


@register
class QuantizeCompleted(StepCompleted):
    TYPE = "quantize.completed"


@register
class PruneCompleted(StepCompleted):
    TYPE = "prune.completed"


@register
class LoraCompleted(StepCompleted):
    TYPE = "lora.completed"


@register
class QuantizeCompletedV2(StepCompletedV2):
    TYPE = "quantize.completed"


@register
class PruneCompletedV2(StepCompletedV2):
    TYPE = "prune.completed"


@register
class LoraCompletedV2(StepCompletedV2):
    TYPE = "lora.completed"


@register
class QuantizeCompletedV1(StepCompletedV1):
    TYPE = "quantize.completed"


@register
class PruneCompletedV1(StepCompletedV1):
    TYPE = "prune.completed"


@register
class LoraCompletedV1(StepCompletedV1):
    TYPE = "lora.completed"


STEP_COMPLETIONS_BY_TYPE: dict[str, type[StepCompleted]] = {
    cls.TYPE: cls for cls in (QuantizeCompleted, PruneCompleted, LoraCompleted)
}


def step_completion_class(kind: str) -> type[StepCompleted]:
    """The completion type for a step kind; kinds without a written class get the generic one."""
    type_ = f"{check_step_kind(kind)}.completed"
    if type_ not in STEP_COMPLETIONS_BY_TYPE:
        STEP_COMPLETIONS_BY_TYPE[type_] = type(
            f"{kind.title().replace('_', '')}Completed", (StepCompleted,),
            {"TYPE": type_, "__module__": __name__, "__doc__": f"A {kind} step's output and cost."},
        )  # fmt: skip
    return STEP_COMPLETIONS_BY_TYPE[type_]


STEP_COMPLETIONS_V2: dict[str, type[StepCompletedV2]] = {
    cls.TYPE: cls for cls in (QuantizeCompletedV2, PruneCompletedV2, LoraCompletedV2)
}


def step_completion_v2_class(kind: str) -> type[StepCompletedV2]:
    """Version 2 of a kind's completion (no energy), so an old log of any kind still replays."""
    type_ = f"{check_step_kind(kind)}.completed"
    if type_ not in STEP_COMPLETIONS_V2:
        STEP_COMPLETIONS_V2[type_] = type(
            f"{kind.title().replace('_', '')}CompletedV2", (StepCompletedV2,),
            {"TYPE": type_, "__module__": __name__, "__doc__": f"A {kind} step's output and cost, version 2."},
        )  # fmt: skip
    step_completion_class(kind)  # what it upcasts to
    return STEP_COMPLETIONS_V2[type_]


def _resolve_step_completion(type_: str, version: int) -> type[EventData] | None:
    match = STEP_TYPE.match(type_)
    if match is None or match.group(2) != "completed" or version not in (2, StepCompleted.VERSION):
        return None
    try:
        kind = match.group(1)
        return step_completion_class(kind) if version == StepCompleted.VERSION else step_completion_v2_class(kind)
    except ValueError:
        return None


register_family(_resolve_step_completion)


class Latency(BaseModel):
    """Medians over repeated runs; the fields after `device` say how far to trust them (v2 of the event)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefill_ms_per_token: float
    decode_ms_per_token: float
    decode_tokens_per_s: float
    device: str
    repetitions: int | None = Field(default=None, description="Timed runs behind the medians.")
    decode_ms_iqr: float | None = Field(default=None, description="Spread: interquartile range of the runs.")
    threads: int | None = None
    runtime: Literal["eager", "compiled"] = "eager"
    host_lease: bool | None = Field(
        default=None, description="Measured holding the host's lease (no heavy job beside)."
    )
    waited_for_jobs: int | None = Field(default=None, description="Heavy jobs on the host it waited for.")
    cpu_load_pct: float | None = Field(default=None, description="Host CPU busy % during it (itself included).")
    energy: Energy | None = Field(
        default=None, description="Energy over the timed runs (v3): its mean power times ms/token is J per token."
    )
    compile_s: float | None = Field(
        default=None, ge=0, description="runtime compiled (v4): seconds torch.compile took, outside ms/token."
    )


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
    """An evaluation's scores (with intervals), latency (with its spread and the host's load), memory,
    size and energy. Version 2: latency carries repetitions, spread, threads and the host lease.
    Version 3: the latency's own energy (so energy per generated token), energy readings' seconds.
    Version 4: a compiled runtime's compile time, apart from the per-token figures."""

    TYPE = "evaluate.completed"
    VERSION = 4
    job_id: JobId
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


@register
class EvaluateCompletedV3(EvaluateCompleted):
    """Version 3: no compile time. Read as version 4 with it unknown."""

    VERSION = 3

    def upcast(self) -> EvaluateCompleted:
        return EvaluateCompleted.model_validate(self.model_dump())


@register
class EvaluateCompletedV2(EvaluateCompleted):
    """Version 2: no energy for the latency phase. Read as version 3 with it unknown."""

    VERSION = 2

    def upcast(self) -> EvaluateCompleted:
        return EvaluateCompleted.model_validate(self.model_dump())


@register
class EvaluateCompletedV1(EvaluateCompleted):
    """Version 1: latency as medians only. Read as version 2 with the spread unknown."""

    VERSION = 1

    def upcast(self) -> EvaluateCompleted:
        return EvaluateCompleted.model_validate(self.model_dump())


@register
class ModelStaged(EventData):
    """The experiment's base model, put into the object store once, so a job on any machine fetches it
    by content and needs neither the model's package nor the Hub."""

    TYPE = "model.staged"
    model: str
    artifact: Artifact
    wall_s: float = Field(ge=0)
