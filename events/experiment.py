"""Events about an experiment as a whole and the coordinator's decisions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from greenai.events.envelope import EventData
from greenai.events.registry import register

# Any step kind an agent announces (quantize, prune, lora, distill, ...): a token, not a fixed list.
StepKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,30}$")]


class Step(BaseModel):
    """One compression step; an episode runs its steps in order, each on the previous one's output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: StepKind
    method: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


def steps_key(steps: Sequence[Step]) -> str:
    """A stable text key for a list of steps (steps hold dicts, so they are not hashable)."""
    return json.dumps([s.model_dump() for s in steps], sort_keys=True, separators=(",", ":"))


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
    objective: Literal["balanced", "accuracy_focused", "latency_focused", "memory_constrained"] = "balanced"
    patience: int | None = Field(
        default=None, ge=1, description="Stop after this many episodes without a new front point."
    )
    time_budget_h: float | None = Field(default=None, gt=0, description="Stop deciding once this much time has passed.")
    interactive: bool = Field(default=False, description="Each decision waits for a person's review.")
    plan: list[list[Step]] | None = Field(
        default=None, description="For policy 'plan': the episodes to run, each a list of steps."
    )
    secondary: list[str] = Field(
        default_factory=list, description="More benchmarks scored on every candidate (not optimised for)."
    )
    space: Literal["full", "cpu-fast"] = Field(default="full", description="The space the search policies sample.")
    promote_limit: int | None = Field(
        default=None,
        ge=0,
        description="Front candidates are re-evaluated on this many items (0: all); unset: no promotion.",
    )
    requested_by: str = "cli"
    # added without a version bump: an optional field with a default reads every older log unchanged
    trust_task_code: bool = Field(
        default=False, description="The user allowed an lm-eval task folder's own Python (--trust-task-code)."
    )


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


def public_location(source: str, location: str) -> str:
    """Where a model comes from, without a host path: the Hub id, or the GGUF file's / folder's name."""
    if source == "hub":
        return location
    return location.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or "model"


@register
class SpecInferred(EventData):
    """The model's specs. Version 2: `spec.location` holds no host path (the Hub id, or a file or
    folder name); the model travels to other machines as `model.staged`, by content."""

    TYPE = "spec.inferred"
    VERSION = 2
    spec: ModelSpec

    @model_validator(mode="after")
    def _no_host_path(self) -> SpecInferred:
        loc = self.spec.location
        bad = loc in ("", ".") or loc.startswith(("/", "~")) or ".." in loc
        if bad or public_location(self.spec.source, loc) != loc:
            raise ValueError(f"spec.location {loc[:200]!r} must be a Hub id or a bare file/folder name, not a path")
        return self


@register
class SpecInferredV1(EventData):
    """Version 1 named the model's file or folder by host path. Read as version 2 with its name only."""

    TYPE = "spec.inferred"
    spec: ModelSpec

    def upcast(self) -> SpecInferred:
        location = public_location(self.spec.source, self.spec.location)
        return SpecInferred(spec=self.spec.model_copy(update={"location": location}))


@register
class EpisodeDecided(EventData):
    """One decision of the policy: which compression (one step or a pipeline) to try, and why."""

    TYPE = "episode.decided"
    VERSION = 3
    episode: int = Field(ge=1)
    action: Literal["compress", "end"]
    steps: list[Step] = Field(default_factory=list)
    policy: str
    rationale: str
    search_point: dict[str, Any] | None = Field(
        default=None, description="A search policy's own coordinates for this decision (to rebuild its study)."
    )
    search_space: dict[str, list[Any]] | None = Field(
        default=None,
        description="The choices each coordinate had: the space came from the agents then live, so it is kept.",
    )

    @model_validator(mode="after")
    def _steps_match_action(self) -> EpisodeDecided:
        if (self.action == "compress") != bool(self.steps):
            raise ValueError("'compress' needs at least one step and 'end' takes none")
        return self

    @property
    def method(self) -> str | None:
        """A label: the method of a single step, or the pipeline as 'wanda → autoround → lora'."""
        return " → ".join(s.method for s in self.steps) if self.steps else None

    @property
    def params(self) -> dict[str, Any]:
        if len(self.steps) == 1:
            return dict(self.steps[0].params)
        return {"steps": [s.model_dump() for s in self.steps]} if self.steps else {}


@register
class EpisodeDecidedV2(EventData):
    """Version 2: no record of the search space's choices. Read as version 3 without them."""

    TYPE = "episode.decided"
    VERSION = 2
    episode: int = Field(ge=1)
    action: Literal["compress", "end"]
    steps: list[Step] = Field(default_factory=list)
    policy: str
    rationale: str
    search_point: dict[str, Any] | None = None

    def upcast(self) -> EpisodeDecided:
        return EpisodeDecided.model_validate(self.model_dump())


@register
class EpisodeDecidedV1(EventData):
    """Version 1, from before pipelines: one quantization per episode. Read as version 2."""

    TYPE = "episode.decided"
    VERSION = 1
    episode: int = Field(ge=1)
    action: Literal["quantize", "end"]
    method: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    policy: str
    rationale: str

    def upcast(self) -> EpisodeDecided:
        steps = (
            [Step(kind="quantize", method=self.method, params=self.params)]
            if self.action == "quantize" and self.method
            else []
        )
        return EpisodeDecided(
            episode=self.episode,
            action="compress" if steps else "end",
            steps=steps,
            policy=self.policy,
            rationale=self.rationale,
        )


@register
class DecisionProposed(EventData):
    """In an interactive run, the policy's proposal for an episode, waiting for a person's review."""

    TYPE = "decision.proposed"
    episode: int = Field(ge=1)
    proposal: int = Field(ge=1, description="1 for the first proposal of this episode, 2 after one rejection, ...")
    action: Literal["compress", "end"]
    steps: list[Step] = Field(default_factory=list)
    policy: str
    rationale: str
    search_point: dict[str, Any] | None = None


@register
class DecisionReviewed(EventData):
    """A person's answer to a proposal: approve it, replace its steps, or reject it."""

    TYPE = "decision.reviewed"
    episode: int = Field(ge=1)
    proposal: int = Field(ge=1)
    verdict: Literal["approve", "edit", "reject"]
    steps: list[Step] = Field(default_factory=list, description="With 'edit': the steps to run instead.")
    reviewer: str
    comment: str = ""


EXCERPT_BYTES = 8 * 1024  # of a prompt or an answer kept in `llm.consulted`
SHORT_EXCERPT_BYTES = 2 * 1024  # of a follow-up message (the previous answer, the correction)
MAX_DIGESTED_MESSAGES = 4  # system, context, and on a retry the last answer and the correction


def excerpt(text: str, max_bytes: int) -> str:
    """The start of `text`, at most `max_bytes` of UTF-8 (never a broken character)."""
    raw = text.encode("utf-8")
    return text if len(raw) <= max_bytes else raw[:max_bytes].decode("utf-8", errors="ignore")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class MessageDigest(BaseModel):
    """One chat message as the log keeps it: its size and hash, and the start of it. The system
    prompt is a constant of the code: only its hash is kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str = Field(max_length=32)
    chars: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    excerpt: str = Field(default="", max_length=EXCERPT_BYTES)

    @property
    def truncated(self) -> bool:
        return len(self.excerpt) < self.chars

    @classmethod
    def of(cls, role: str, content: str, max_bytes: int) -> MessageDigest:
        return cls(role=role[:32], chars=len(content), sha256=sha256_text(content), excerpt=excerpt(content, max_bytes))


def digest_messages(messages: Sequence[dict[str, str]]) -> tuple[list[MessageDigest], str]:
    """The digests `llm.consulted` keeps (system prompt by hash, the context and the last exchange
    by excerpt) and a hash over the whole conversation as sent."""
    digests: list[MessageDigest] = []
    for i, m in enumerate(messages):
        role, content = str(m.get("role", "")), str(m.get("content", ""))
        if i >= 2 and i < len(messages) - (MAX_DIGESTED_MESSAGES - 2):
            continue  # earlier retries: their answers are in earlier llm.consulted events
        limit = 0 if role == "system" else EXCERPT_BYTES if i < 2 else SHORT_EXCERPT_BYTES
        digests.append(MessageDigest.of(role, content, limit))
    whole = json.dumps(list(messages), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return digests, sha256_text(whole)


@register
class LLMConsulted(EventData):
    """One call to the LLM policy, bounded whatever the history: the prompt by hash, size and
    excerpt; the answer cut to `EXCERPT_BYTES` with its full size; whether it was usable.
    `base_url` carries no credentials and `error` no key-like strings (shared/scrub.py)."""

    TYPE = "llm.consulted"
    VERSION = 2
    episode: int
    attempt: int = Field(ge=1)
    model: str = Field(max_length=512)
    base_url: str | None = Field(default=None, max_length=2048)
    messages: list[MessageDigest] = Field(max_length=MAX_DIGESTED_MESSAGES)
    messages_sent: int = Field(ge=0, description="Messages the call carried (digested: the first two and last two).")
    conversation_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    answer: str = Field(max_length=EXCERPT_BYTES)
    answer_chars: int = Field(ge=0)
    valid: bool
    error: str | None = Field(default=None, max_length=2000)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float


@register
class LLMConsultedV1(EventData):
    """Version 1 kept every message whole (it grew with the history) and the base URL as configured.
    Read as version 2; the credentials scrub applies to old events too."""

    TYPE = "llm.consulted"
    episode: int
    attempt: int = Field(ge=1)
    model: str
    base_url: str | None
    messages: list[dict[str, str]]
    answer: str
    valid: bool
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float

    def upcast(self) -> LLMConsulted:
        from greenai.shared.scrub import scrub_text, scrub_url

        digests, whole = digest_messages(self.messages)
        return LLMConsulted(
            episode=self.episode,
            attempt=self.attempt,
            model=self.model[:512],
            base_url=scrub_url(self.base_url),
            messages=digests,
            messages_sent=len(self.messages),
            conversation_sha256=whole,
            answer=excerpt(self.answer, EXCERPT_BYTES),
            answer_chars=len(self.answer),
            valid=self.valid,
            error=scrub_text(self.error, 2000) if self.error is not None else None,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cost_usd=self.cost_usd,
            latency_s=self.latency_s,
        )


@register
class PolicyFellBack(EventData):
    """The configured policy could not decide (e.g. the LLM kept answering invalid JSON)."""

    TYPE = "policy.fell_back"
    episode: int
    from_policy: str
    to_policy: str
    reason: str


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
