"""Skill memory: what each method did to each model family, across every experiment in the log.

A skill is keyed by (model family, method, parameters). It records how often it was tried, how
often it failed, and — relative to the same experiment's uncompressed baseline — how much accuracy
it kept and how much smaller and faster it made the model. The coordinator's policies read it.
"""

from __future__ import annotations

import json
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
class _Acc:
    trials: int = 0
    failures: int = 0
    retained: list[float] = field(default_factory=list)
    size: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 6) if xs else None


def skill_memory(events: Iterable[Envelope]) -> SkillMemory:
    family: dict[str, str] = {}
    episodes: dict[tuple[str, int], tuple[str, str]] = {}  # (exp, episode) -> (method, params key)
    jobs: dict[tuple[str, str], int] = {}  # (exp, job id) -> episode
    baseline: dict[str, EvaluateCompleted] = {}
    pending: dict[str, list[EvaluateCompleted]] = {}  # results that came before their baseline
    counted: set[tuple[str, int]] = set()
    acc: dict[tuple[str, str, str], _Acc] = {}

    def slot(exp: str, episode: int) -> _Acc | None:
        if (exp, episode) not in episodes:
            return None
        method, pkey = episodes[(exp, episode)]
        return acc.setdefault((family.get(exp, "unknown"), method, pkey), _Acc())

    def record(exp: str, r: EvaluateCompleted) -> None:
        base = baseline[exp]
        s = slot(exp, r.episode)
        if s is None:
            return
        if base.accuracy > 0:
            s.retained.append(r.accuracy / base.accuracy)
        if r.size_bytes > 0:
            s.size.append(r.size_bytes / base.size_bytes)
        if base.latency.decode_ms_per_token > 0:
            s.latency.append(r.latency.decode_ms_per_token / base.latency.decode_ms_per_token)

    for env in events:
        exp, data = env.experiment_id, env.data
        if isinstance(data, SpecInferred):
            family[exp] = data.spec.family
        elif isinstance(data, EpisodeDecided) and data.action == "compress" and data.method:
            if (exp, data.episode) not in episodes:
                episodes[(exp, data.episode)] = (data.method, params_key(data.params))
                s = slot(exp, data.episode)
                if s is not None:
                    s.trials += 1
        elif isinstance(data, StepRequested):
            jobs[(exp, data.job_id)] = data.episode
        elif isinstance(data, JobFailed) and data.final and (exp, data.job_id) in jobs:
            episode = jobs[(exp, data.job_id)]
            s = slot(exp, episode)
            if s is not None and (exp, episode) not in counted:
                counted.add((exp, episode))
                s.failures += 1
                s.reasons.append(f"{data.reason}: {data.message[:200]}")
        elif isinstance(data, EvaluateCompleted):
            if data.episode == 0:
                if exp not in baseline:
                    baseline[exp] = data
                    for r in pending.pop(exp, []):
                        record(exp, r)
            elif (exp, data.episode) not in counted:
                counted.add((exp, data.episode))
                if exp in baseline:
                    record(exp, data)
                else:
                    pending.setdefault(exp, []).append(data)
    skills = [
        Skill(
            family=fam,
            method=method,
            params=json.loads(pkey),
            trials=a.trials,
            failures=a.failures,
            mean_accuracy_retained=_mean(a.retained),
            mean_size_ratio=_mean(a.size),
            mean_latency_ratio=_mean(a.latency),
            failure_reasons=a.reasons[-5:],
        )
        for (fam, method, pkey), a in sorted(acc.items())
    ]
    return SkillMemory(skills=skills)
