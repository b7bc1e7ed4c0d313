"""Job requests to agents and the lifecycle of a job: started, failed, rejected input.

A job id is a plain token: agents derive folder names from it, so '/', '..' and friends are refused
when the event is read, before any agent acts on it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from greenai.events.artifacts import Artifact, ArtifactV1
from greenai.events.envelope import EventData
from greenai.events.registry import register, register_family

JOB_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,160}$"
_JOB_ID = re.compile(JOB_ID_PATTERN)


def check_job_id(job_id: str) -> str:
    """Letters, digits, '_', '.', '-' (1-160), and no '..': safe as a file name on any machine."""
    if not _JOB_ID.match(job_id) or ".." in job_id:
        raise ValueError(f"job id {job_id[:200]!r} must be 1-160 letters, digits, '_', '.' or '-', without '..'")
    return job_id


JobId = Annotated[str, AfterValidator(check_job_id)]


class ArtifactRef(BaseModel):
    """What a job works on: the experiment's base model (staged in the object store, `model.staged`) or
    a folder some job produced — by content, never by host path. `artifact` is None only for a base
    model named by reference (a log from before staging): the agent then resolves the reference itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["base", "artifact"]
    model: str = Field(description="The model reference the experiment started from.")
    artifact: Artifact | None = None

    @model_validator(mode="after")
    def _artifact_named(self) -> ArtifactRef:
        if self.kind == "artifact" and self.artifact is None:
            raise ValueError("a ref of kind 'artifact' must name the artifact")
        return self


class ArtifactRefV1(BaseModel):
    """Version 1: a host path and a folder hash. Read as a ref whose artifact the store does not have."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["base", "artifact"]
    model: str
    path: str | None = None
    sha256: str | None = None

    def upcast(self) -> ArtifactRef:
        if self.kind == "base":
            return ArtifactRef(kind="base", model=self.model)
        digest = self.sha256 if self.sha256 and re.fullmatch(r"[0-9a-f]{64}", self.sha256) else "0" * 64
        artifact = ArtifactV1(path="", bytes=0, sha256=digest).upcast()
        return ArtifactRef(kind="artifact", model=self.model, artifact=artifact)


class StepRequested(EventData):
    """A compression step for an agent: its input, method and parameters. One subclass per agent."""

    VERSION = 2
    job_id: JobId
    episode: int = Field(ge=1)
    step: int = Field(default=0, ge=0, description="Position in the episode's pipeline.")
    source: ArtifactRef
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    calibration_samples: int = Field(default=32, ge=1)
    calibration_seq_len: int = Field(default=256, ge=8)
    seed: int = 0


class StepRequestedV1(EventData):
    """Version 1: the source named by host path. Read as version 2."""

    job_id: JobId
    episode: int = Field(ge=1)
    step: int = Field(default=0, ge=0)
    source: ArtifactRefV1
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    calibration_samples: int = Field(default=32, ge=1)
    calibration_seq_len: int = Field(default=256, ge=8)
    seed: int = 0

    def upcast(self) -> StepRequested:
        cls = next(c for c in STEP_REQUESTS.values() if c.TYPE == self.TYPE)
        return cls.model_validate({**self.model_dump(exclude={"source"}), "source": self.source.upcast()})


@register
class QuantizeRequested(StepRequested):
    TYPE = "quantize.requested"


@register
class PruneRequested(StepRequested):
    TYPE = "prune.requested"


@register
class LoraRequested(StepRequested):
    TYPE = "lora.requested"


@register
class QuantizeRequestedV1(StepRequestedV1):
    TYPE = "quantize.requested"


@register
class PruneRequestedV1(StepRequestedV1):
    TYPE = "prune.requested"


@register
class LoraRequestedV1(StepRequestedV1):
    TYPE = "lora.requested"


STEP_REQUESTS: dict[str, type[StepRequested]] = {
    "quantize": QuantizeRequested,
    "prune": PruneRequested,
    "lora": LoraRequested,
}
STEP_TYPE = re.compile(r"^([a-z][a-z0-9_]{0,30})\.(requested|completed)$")
NOT_STEP_KINDS = frozenset({"run", "evaluate", "experiment", "job", "agent", "episode", "decision", "spec", "model"})


def check_step_kind(kind: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", kind) or kind in NOT_STEP_KINDS:
        raise ValueError(f"{kind!r} is not a step kind (a lowercase token, not one of {sorted(NOT_STEP_KINDS)})")
    return kind


def step_request_class(kind: str) -> type[StepRequested]:
    """The request type for a step kind; a kind no class was written for gets the generic one.

    New kinds of agents (distill, cast, ...) need no new class: `<kind>.requested` is read as a
    `StepRequested` whatever the kind, so the coordinator and the log need no edit for them.
    """
    if kind not in STEP_REQUESTS:
        check_step_kind(kind)
        STEP_REQUESTS[kind] = type(
            f"{kind.title().replace('_', '')}Requested", (StepRequested,),
            {"TYPE": f"{kind}.requested", "__module__": __name__, "__doc__": f"A {kind} step for its agent."},
        )  # fmt: skip
    return STEP_REQUESTS[kind]


def _resolve_step_request(type_: str, version: int) -> type[EventData] | None:
    match = STEP_TYPE.match(type_)
    if match is None or match.group(2) != "requested" or version != StepRequested.VERSION:
        return None
    try:
        return step_request_class(match.group(1))
    except ValueError:
        return None


register_family(_resolve_step_request)


@register
class EvaluateRequested(EventData):
    TYPE = "evaluate.requested"
    VERSION = 2
    job_id: JobId
    episode: int = Field(ge=0, description="0 is the uncompressed baseline.")
    target: ArtifactRef
    task: str
    limit: int | None = Field(default=None, ge=1, description="A seeded subset of this many items; unset: all.")
    seed: int = 0
    secondary: list[str] = Field(default_factory=list)
    purpose: Literal["episode", "promotion"] = Field(
        default="episode", description="'promotion': a front candidate re-evaluated on more items."
    )
    trust_task_code: bool = Field(default=False, description="From the run request: task-folder Python allowed.")


@register
class EvaluateRequestedV1(EventData):
    """Version 1: the target named by host path. Read as version 2."""

    TYPE = "evaluate.requested"
    job_id: JobId
    episode: int = Field(ge=0)
    target: ArtifactRefV1
    task: str
    limit: int | None = Field(default=None, ge=1)
    seed: int = 0
    secondary: list[str] = Field(default_factory=list)
    purpose: Literal["episode", "promotion"] = "episode"
    trust_task_code: bool = False

    def upcast(self) -> EvaluateRequested:
        return EvaluateRequested.model_validate({**self.model_dump(exclude={"target"}), "target": self.target.upcast()})


@register
class JobStarted(EventData):
    TYPE = "job.started"
    job_id: JobId
    kind: str
    agent: str
    instance: str
    attempt: int = Field(ge=1)


@register
class JobFailed(EventData):
    """A job did not complete. `final` means no more attempts will be made."""

    TYPE = "job.failed"
    job_id: JobId
    kind: str
    episode: int
    agent: str
    attempt: int = Field(ge=1)
    final: bool
    reason: Literal["unsupported", "invalid", "error", "gave_up", "timeout"]
    error_type: str
    message: str


@register
class EventRejected(EventData):
    """A message on an agent's subject was not a valid event; kept here so nothing is lost."""

    TYPE = "event.rejected"
    subject: str
    agent: str
    reason: str
    raw: str = Field(description="The first 2000 characters of the message as received.")
