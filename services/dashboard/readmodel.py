"""The dashboard's read model: the log folded once, then kept up to date event by event.

Each experiment keeps its `ExperimentState` (the coordinator's own fold, `projections/experiment.py`),
the events the Pareto fold reads (`projections/pareto.py`), and what a page shows besides: which agent
instance runs each job, the LLM calls behind each decision, the latest events. The agents' catalogue
is the coordinator's fold too (`projections/capabilities.py`). Folding does no I/O; the server feeds
events in and asks the views (`views.py`) for snapshots and deltas. Every part remembers the stream
sequence that last changed it, so a page gets only what changed since the sequence it was sent.

A read model resumed from a snapshot (`readmodel_state.py`) starts with every experiment *dormant*:
only its row is known. `wake` folds one from its own history before anything reads or changes it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from greenai.events import Envelope
from greenai.events.capabilities import AGENTS_EXPERIMENT_PREFIX
from greenai.events.experiment import EpisodeDecided, LLMConsulted
from greenai.events.jobs import EventRejected, JobFailed, JobStarted
from greenai.events.results import EvaluateCompleted, StepCompleted
from greenai.projections import capabilities
from greenai.projections.experiment import ExperimentState
from greenai.projections.experiment import apply as apply_experiment
from greenai.projections.pareto import ParetoFront, pareto_front
from greenai.services.dashboard.hypervolume import HypervolumeCurve
from greenai.shared.eventstore_records import History, StoredEvent, Unreadable

TAIL = 300  # latest events kept per experiment for the page's event tail
SYSTEM = "_system"


@dataclass(frozen=True)
class TailItem:
    seq: int
    time: datetime
    type: str
    text: str


@dataclass
class ExperimentModel:
    """One experiment as the dashboard keeps it."""

    state: ExperimentState
    results: list[Envelope] = field(default_factory=list)  # decisions and evaluations: the Pareto fold's input
    jobs: dict[str, JobStarted] = field(default_factory=dict)  # job id -> its latest start (which instance)
    llm: dict[int, list[LLMConsulted]] = field(default_factory=dict)
    tail: deque[TailItem] = field(default_factory=lambda: deque(maxlen=TAIL))
    last_rejection: str = ""
    last_seq: int = 0
    results_seq: int = 0  # the last sequence that changed the Pareto fold's input
    episode_seq: dict[int, int] = field(default_factory=dict)  # episode -> the last sequence that touched it
    _front: ParetoFront | None = None
    _curve: HypervolumeCurve = field(default_factory=HypervolumeCurve)
    _views: dict[str, tuple[int, Any]] = field(default_factory=dict)  # view -> (the sequence it was made at, it)

    def cached(self, view: str, at: int, make: Any) -> Any:
        """A view of this model made once per change (`at`: the sequence its input last changed), so
        every page streaming it, and every snapshot, share one computation."""
        kept = self._views.get(view)
        if kept is None or kept[0] != at:
            kept = self._views[view] = (at, make())
        return kept[1]

    @property
    def experiment_id(self) -> str:
        return self.state.experiment_id

    def front(self) -> ParetoFront:
        """The Pareto fold over this experiment's results, refolded only when they changed."""
        if self._front is None:
            self._front = pareto_front(self.results)
        return self._front

    def hypervolume(self) -> list[dict[str, float | int]]:
        """The hypervolume after each evaluated episode (`hypervolume.py`), kept between calls."""
        return self._curve.update(self.front().candidates)

    def episode_of(self, env: Envelope) -> int | None:
        data = env.data
        if isinstance(data, JobStarted):
            ep = self.state.episode_of_job(data.job_id)
            return ep.number if ep is not None else None
        episode = getattr(data, "episode", None)
        return episode if isinstance(episode, int) else None


def describe_event(env: Envelope) -> str:
    """The terminal's one-liner for an event (the same words `greenai tail` prints)."""
    from greenai.cli.render import describe

    return describe(env)


@dataclass
class ReadModel:
    experiments: dict[str, ExperimentModel] = field(default_factory=dict)
    catalogue: capabilities.Catalogue = field(default_factory=capabilities.Catalogue)
    agent_seen: dict[str, datetime] = field(default_factory=dict)  # instance -> first announcement
    doing: dict[str, tuple[str, JobStarted]] = field(default_factory=dict)  # instance -> (experiment, job)
    agents_seq: int = 0
    unreadable: int = 0
    last_seq: int = 0
    dormant: dict[str, dict[str, Any]] = field(default_factory=dict)  # experiment -> its stored row (not folded)

    def apply(self, item: StoredEvent | Unreadable) -> str | None:
        """Fold one stored message; return the experiment it changed (None for agents or unreadable).
        An experiment woken from its history may already hold the event: it is folded once."""
        if isinstance(item, StoredEvent) and item.envelope.experiment_id in self.dormant:
            raise RuntimeError(f"experiment {item.envelope.experiment_id} is dormant: wake it before folding into it")
        self.last_seq = max(self.last_seq, item.seq)
        if isinstance(item, Unreadable):
            self.unreadable += 1
            return None
        env = item.envelope
        exp = env.experiment_id
        if exp.startswith(AGENTS_EXPERIMENT_PREFIX):
            capabilities.apply(self.catalogue, env)
            for instance in self.catalogue.instances:
                self.agent_seen.setdefault(instance, env.time)
            self.agents_seq = item.seq
            return None
        model = self.experiments.get(exp)
        if model is None:
            model = self.experiments[exp] = ExperimentModel(ExperimentState(exp))
        if item.seq > model.last_seq:
            self._apply_to(model, item.seq, env)
        self._track_agent_work(exp, env, item.seq)
        return exp

    def wake(self, history: History) -> ExperimentModel:
        """A dormant experiment folded from its own events (the agents' part is in the snapshot already)."""
        self.dormant.pop(history.experiment_id, None)
        model = ExperimentModel(ExperimentState(history.experiment_id))
        for stored in history.events:
            self._apply_to(model, stored.seq, stored.envelope)
        if history.events:
            self.experiments[history.experiment_id] = model
        return model

    def known(self, experiment_id: str) -> bool:
        return experiment_id in self.experiments or experiment_id in self.dormant

    def all_rows(self) -> list[dict[str, Any]]:
        """Every experiment's row, folded or stored (the `_system` bucket included): what a snapshot keeps."""
        from greenai.services.dashboard.views import summary

        return [summary(m) for m in self.experiments.values()] + list(self.dormant.values())

    def rows(self, since: int = 0) -> list[dict[str, Any]]:
        """The experiments page's rows changed after sequence `since` (all with 0), without `_system`."""
        from greenai.services.dashboard.views import summary

        folded = [summary(m) for e, m in self.experiments.items() if e != SYSTEM and m.last_seq > since]
        stored = [r for e, r in self.dormant.items() if e != SYSTEM and r["last_seq"] > since]
        return folded + stored

    def _apply_to(self, model: ExperimentModel, seq: int, env: Envelope) -> None:
        apply_experiment(model.state, env)
        data = env.data
        model.last_seq = seq
        if isinstance(data, EpisodeDecided | EvaluateCompleted):
            model.results.append(env)
            model.results_seq = seq
            model._front = None
        elif isinstance(data, JobStarted):
            model.jobs[data.job_id] = data
        elif isinstance(data, LLMConsulted):
            model.llm.setdefault(data.episode, []).append(data)
        elif isinstance(data, EventRejected):
            model.last_rejection = data.reason
        episode = model.episode_of(env)
        if episode is not None:
            model.episode_seq[episode] = seq
        model.tail.append(TailItem(seq, env.time, env.type, describe_event(env)))

    def _track_agent_work(self, exp: str, env: Envelope, seq: int) -> None:
        """What each instance is doing: its latest started job until that job completes or fails."""
        data = env.data
        if isinstance(data, JobStarted):
            self.doing[data.instance] = (exp, data)
            self.agents_seq = seq
            return
        job_id = getattr(data, "job_id", None)
        if job_id is None or not isinstance(data, StepCompleted | EvaluateCompleted | JobFailed):
            return
        for instance, (_, started) in list(self.doing.items()):
            if started.job_id == job_id:
                del self.doing[instance]
                self.agents_seq = seq

    def get(self, experiment_id: str) -> ExperimentModel | None:
        return self.experiments.get(experiment_id)

    def listed(self) -> list[ExperimentModel]:
        """The experiments a person asked for: not the `_system` bucket of unaddressable messages."""
        return [m for e, m in self.experiments.items() if e != SYSTEM]
