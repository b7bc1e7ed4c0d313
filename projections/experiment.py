"""The state of one experiment, folded from its events; what the coordinator decides from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from greenai.events import Envelope
from greenai.events.cancellation import ExperimentCancelled
from greenai.events.experiment import (
    DecisionProposed,
    DecisionReviewed,
    EpisodeDecided,
    ExperimentCompleted,
    ExperimentFailed,
    ModelSpec,
    RunRequested,
    SpecInferred,
    steps_key,
)
from greenai.events.jobs import ArtifactRef, EvaluateRequested, EventRejected, JobFailed, JobStarted, StepRequested
from greenai.events.results import EvaluateCompleted, ModelStaged, StepCompleted


@dataclass
class Promotion:
    """A front candidate's larger evaluation: requested, then a result or a failure."""

    request: EvaluateRequested | None = None
    result: EvaluateCompleted | None = None
    failure: JobFailed | None = None

    @property
    def pending(self) -> bool:
        return self.request is not None and self.result is None and self.failure is None


@dataclass
class EpisodeState:
    number: int
    decision: EpisodeDecided
    decision_event: Envelope
    requests: dict[int, StepRequested] = field(default_factory=dict)
    completed: dict[int, StepCompleted] = field(default_factory=dict)
    evaluate_request: EvaluateRequested | None = None
    evaluated: EvaluateCompleted | None = None
    failure: JobFailed | None = None
    attempts: int = 0
    promotion: Promotion = field(default_factory=Promotion)

    @property
    def next_step(self) -> int | None:
        """The first step without a completion: where a crashed pipeline resumes."""
        for i in range(len(self.decision.steps)):
            if i not in self.completed:
                return i
        return None

    @property
    def final_artifact(self) -> StepCompleted | None:
        return self.completed.get(len(self.decision.steps) - 1) if self.decision.steps else None

    @property
    def status(self) -> str:
        if self.failure is not None:
            return "failed"
        if self.evaluated is not None:
            return "evaluated"
        if self.evaluate_request is not None:
            return "evaluating"
        step = self.next_step
        if step is None:
            return "compressed"
        return f"step {step + 1}/{len(self.decision.steps)} {'running' if step in self.requests else 'pending'}"

    @property
    def finished(self) -> bool:
        return self.status in ("evaluated", "failed") or self.decision.action == "end"


@dataclass
class BaselineState:
    request: EvaluateRequested | None = None
    result: EvaluateCompleted | None = None
    failure: JobFailed | None = None
    promotion: Promotion = field(default_factory=Promotion)

    @property
    def finished(self) -> bool:
        return self.result is not None or self.failure is not None


@dataclass
class ExperimentState:
    experiment_id: str
    run: RunRequested | None = None
    run_event: Envelope | None = None
    spec: ModelSpec | None = None
    staged: ModelStaged | None = None  # the base model in the object store
    baseline: BaselineState = field(default_factory=BaselineState)
    episodes: dict[int, EpisodeState] = field(default_factory=dict)
    completed: ExperimentCompleted | None = None
    failed: ExperimentFailed | None = None
    cancelled: ExperimentCancelled | None = None  # asked to stop: no new decision or job
    rejected: int = 0
    events: int = 0
    proposals: dict[int, list[DecisionProposed]] = field(default_factory=dict)
    reviews: dict[tuple[int, int], DecisionReviewed] = field(default_factory=dict)

    def tried_keys(self) -> set[str]:
        """Steps already run, or proposed and rejected by a person: what a policy should not offer again."""
        keys = {steps_key(ep.decision.steps) for ep in self.episodes.values()}
        for (episode, number), review in self.reviews.items():
            if review.verdict == "reject":
                keys.add(steps_key(self.proposals[episode][number - 1].steps))
        return keys

    def open_proposal(self) -> tuple[DecisionProposed, DecisionReviewed | None] | None:
        """The latest proposal for the next episode and its review, if any; None when there is none."""
        props = self.proposals.get(self.decided + 1)
        if not props:
            return None
        return props[-1], self.reviews.get((props[-1].episode, props[-1].proposal))

    @property
    def closed(self) -> bool:
        return self.completed is not None or self.failed is not None

    @property
    def decided(self) -> int:
        return len(self.episodes)

    def promotions(self) -> dict[int, Promotion]:
        """Episode number (0: the baseline) to its promotion."""
        return {0: self.baseline.promotion} | {n: ep.promotion for n, ep in self.episodes.items()}

    def base_ref(self) -> ArtifactRef:
        """The base model as jobs name it: by content once staged, else (an older log) by reference."""
        assert self.run is not None
        artifact = self.staged.artifact if self.staged is not None else None
        return ArtifactRef(kind="base", model=self.run.model, artifact=artifact)

    def episode_of_job(self, job_id: str) -> EpisodeState | None:
        for ep in self.episodes.values():
            if any(r.job_id == job_id for r in ep.requests.values()) or (
                ep.evaluate_request and ep.evaluate_request.job_id == job_id
            ):
                return ep
        return None


def fold_experiment(experiment_id: str, events: Iterable[Envelope]) -> ExperimentState:
    state = ExperimentState(experiment_id)
    for env in events:
        apply(state, env)
    return state


def _promotion_of(state: ExperimentState, job_id: str) -> Promotion | None:
    """The promotion whose request had this job id (its request says `purpose: promotion`)."""
    return next((p for p in state.promotions().values() if p.request and p.request.job_id == job_id), None)


def apply(state: ExperimentState, env: Envelope) -> None:
    """Apply one event. Mutates only `state`, which the fold owns; reads nothing else."""
    state.events += 1
    data = env.data
    if isinstance(data, RunRequested) and state.run is None:
        state.run, state.run_event = data, env
    elif isinstance(data, SpecInferred):
        state.spec = data.spec
    elif isinstance(data, ModelStaged) and state.staged is None:
        state.staged = data
    elif isinstance(data, EpisodeDecided) and data.episode not in state.episodes:
        state.episodes[data.episode] = EpisodeState(data.episode, data, env)
    elif isinstance(data, StepRequested) and data.episode in state.episodes:
        state.episodes[data.episode].requests.setdefault(data.step, data)
    elif isinstance(data, StepCompleted) and data.episode in state.episodes:
        state.episodes[data.episode].completed.setdefault(data.step, data)
    elif isinstance(data, EvaluateRequested) and data.purpose == "promotion":
        promotion = state.promotions().get(data.episode)
        if promotion is not None and promotion.request is None:
            promotion.request = data
    elif isinstance(data, EvaluateCompleted) and data.purpose == "promotion":
        promotion = state.promotions().get(data.episode)
        if promotion is not None and promotion.result is None:
            promotion.result = data
    elif isinstance(data, EvaluateRequested):
        if data.episode == 0:
            state.baseline.request = data
        elif data.episode in state.episodes:
            state.episodes[data.episode].evaluate_request = data
    elif isinstance(data, EvaluateCompleted):
        if data.episode == 0:
            state.baseline.result = data
        elif data.episode in state.episodes:
            state.episodes[data.episode].evaluated = data
    elif isinstance(data, JobStarted):
        ep = state.episode_of_job(data.job_id)
        if ep is not None:
            ep.attempts = max(ep.attempts, data.attempt)
    elif isinstance(data, JobFailed) and data.final and (promotion := _promotion_of(state, data.job_id)):
        promotion.failure = data  # the episode keeps its subset result
    elif isinstance(data, JobFailed) and data.final:
        if state.baseline.request is not None and data.job_id == state.baseline.request.job_id:
            state.baseline.failure = data
        else:
            ep = state.episode_of_job(data.job_id)
            if ep is not None and ep.evaluated is None:
                ep.failure = data
    elif isinstance(data, DecisionProposed):
        props = state.proposals.setdefault(data.episode, [])
        if data.proposal == len(props) + 1:
            props.append(data)
    elif isinstance(data, DecisionReviewed):
        state.reviews.setdefault((data.episode, data.proposal), data)
    elif isinstance(data, EventRejected):
        state.rejected += 1
    elif isinstance(data, ExperimentCompleted):
        state.completed = data
    elif isinstance(data, ExperimentFailed):
        state.failed = data
    elif isinstance(data, ExperimentCancelled) and state.cancelled is None and state.run and not state.closed:
        state.cancelled = data  # the first of an open run's; one before the request or after the end is moot
