"""Skill memory: what each method did to each model family, across every experiment in the log.

A skill is keyed by (model family, method, parameters). It records how often it was tried, how
often it failed, and — relative to the same experiment's uncompressed baseline — how much accuracy
it kept and how much smaller and faster it made the model. The coordinator's policies read it.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from greenai.events import Envelope
from greenai.events.experiment import EpisodeDecided, SpecInferred
from greenai.events.jobs import JobFailed, StepRequested
from greenai.events.results import EvaluateCompleted


class Skill(BaseModel):
    model_config = ConfigDict(frozen=True)

    family: str
    method: str
    params: dict[str, Any]
    trials: int
    failures: int
    mean_accuracy_retained: float | None
    mean_size_ratio: float | None
    mean_latency_ratio: float | None
    failure_reasons: list[str]


class SkillMemory(BaseModel):
    model_config = ConfigDict(frozen=True)

    skills: list[Skill]

    def for_family(self, family: str) -> list[Skill]:
        return [s for s in self.skills if s.family == family]


def params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


@dataclass
class _Mean:
    """A running mean, summed in arrival order (the same float as summing the whole list)."""

    total: float = 0.0
    n: int = 0

    def add(self, x: float) -> None:
        self.total += x
        self.n += 1

    def value(self) -> float | None:
        return round(self.total / self.n, 6) if self.n else None


@dataclass
class _Acc:
    trials: int = 0
    failures: int = 0
    retained: _Mean = field(default_factory=_Mean)
    size: _Mean = field(default_factory=_Mean)
    latency: _Mean = field(default_factory=_Mean)
    reasons: deque[str] = field(default_factory=lambda: deque(maxlen=5))  # the last five


class SkillFold:
    """The skill memory's fold, one event at a time: `apply` each event in log order, read `memory()`
    whenever. Pure (no I/O), so a reader can keep one alive and apply only what is new."""

    def __init__(self) -> None:
        self.family: dict[str, str] = {}
        self.episodes: dict[tuple[str, int], tuple[str, str]] = {}  # (exp, episode) -> (method, params key)
        self.jobs: dict[tuple[str, str], int] = {}  # (exp, job id) -> episode
        self.baseline: dict[str, EvaluateCompleted] = {}
        self.pending: dict[str, list[EvaluateCompleted]] = {}  # results that came before their baseline
        self.counted: set[tuple[str, int]] = set()
        self.acc: dict[tuple[str, str, str], _Acc] = {}

    def _slot(self, exp: str, episode: int) -> _Acc | None:
        if (exp, episode) not in self.episodes:
            return None
        method, pkey = self.episodes[(exp, episode)]
        return self.acc.setdefault((self.family.get(exp, "unknown"), method, pkey), _Acc())

    def _record(self, exp: str, r: EvaluateCompleted) -> None:
        base = self.baseline[exp]
        s = self._slot(exp, r.episode)
        if s is None:
            return
        if base.accuracy > 0:
            s.retained.add(r.accuracy / base.accuracy)
        if r.size_bytes > 0:
            s.size.add(r.size_bytes / base.size_bytes)
        if base.latency.decode_ms_per_token > 0:
            s.latency.add(r.latency.decode_ms_per_token / base.latency.decode_ms_per_token)

    def apply(self, env: Envelope) -> None:
        exp, data = env.experiment_id, env.data
        if isinstance(data, SpecInferred):
            self.family[exp] = data.spec.family
        elif isinstance(data, EpisodeDecided) and data.action == "compress" and data.method:
            if (exp, data.episode) not in self.episodes:
                self.episodes[(exp, data.episode)] = (data.method, params_key(data.params))
                s = self._slot(exp, data.episode)
                if s is not None:
                    s.trials += 1
        elif isinstance(data, StepRequested):
            self.jobs[(exp, data.job_id)] = data.episode
        elif isinstance(data, JobFailed) and data.final and (exp, data.job_id) in self.jobs:
            episode = self.jobs[(exp, data.job_id)]
            s = self._slot(exp, episode)
            if s is not None and (exp, episode) not in self.counted:
                self.counted.add((exp, episode))
                s.failures += 1
                s.reasons.append(f"{data.reason}: {data.message[:200]}")
        elif isinstance(data, EvaluateCompleted):
            if data.episode == 0:
                if exp not in self.baseline:
                    self.baseline[exp] = data
                    for r in self.pending.pop(exp, []):
                        self._record(exp, r)
            elif (exp, data.episode) not in self.counted:
                self.counted.add((exp, data.episode))
                if exp in self.baseline:
                    self._record(exp, data)
                else:
                    self.pending.setdefault(exp, []).append(data)

    def memory(self) -> SkillMemory:
        skills = [
            Skill(
                family=fam,
                method=method,
                params=json.loads(pkey),
                trials=a.trials,
                failures=a.failures,
                mean_accuracy_retained=a.retained.value(),
                mean_size_ratio=a.size.value(),
                mean_latency_ratio=a.latency.value(),
                failure_reasons=list(a.reasons),
            )
            for (fam, method, pkey), a in sorted(self.acc.items())
        ]
        return SkillMemory(skills=skills)


def skill_memory(events: Iterable[Envelope]) -> SkillMemory:
    fold = SkillFold()
    for env in events:
        fold.apply(env)
    return fold.memory()
