"""The Pareto front: evaluated candidates no other candidate beats on every objective.

Objectives: accuracy (higher is better); decode latency, peak memory, size on disk and energy
(lower is better). The uncompressed baseline is a candidate like any other.

Energy is an objective only where a hardware counter measured it: an estimate is codecarbon's power
constants times the evaluation's time, so as an axis it would only repeat wall time while looking like
a measurement. `energy_axis=True` forces it (`--energy-axis` on the command line).

The front is computed on distinct objective vectors: logs have many candidates that tie on every axis
(the same method and settings across experiments), and ties never dominate each other, so each distinct
vector is checked once, in descending order, against the maximal vectors only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import ge
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from greenai.events import Envelope
from greenai.events.experiment import EpisodeDecided
from greenai.events.results import EvaluateCompleted

# (attribute, +1 when higher is better, -1 when lower is better)
OBJECTIVES: tuple[tuple[str, int], ...] = (
    ("accuracy", +1),
    ("latency_ms_per_token", -1),
    ("peak_rss_mb", -1),
    ("size_bytes", -1),
    ("energy_j", -1),
)


class Candidate(BaseModel):
    model_config = ConfigDict(frozen=True)

    experiment_id: str
    episode: int
    method: str
    params: dict[str, Any]
    task: str
    accuracy: float
    ci_low: float
    ci_high: float
    n: int
    latency_ms_per_token: float
    latency_iqr_ms: float | None = None  # spread of the repeated decode runs (interquartile range), when measured
    peak_rss_mb: float
    runtime: str = "eager"  # how its latency was measured: eager, or compiled (torch.compile; compile time apart)
    size_bytes: int
    energy_j: float
    energy_mode: str
    compression_ratio: float | None = None
    promoted: bool = False  # measured on the larger evaluation a front candidate is promoted to
    secondary: dict[str, float] = Field(default_factory=dict)  # other benchmarks' scores, by task


class ParetoFront(BaseModel):
    model_config = ConfigDict(frozen=True)

    objectives: list[str]
    candidates: list[Candidate]
    front: list[Candidate]


def energy_counts(a: Candidate, b: Candidate, energy_axis: bool | None = None) -> bool:
    """Whether energy is compared between a and b: forced on or off, or (None) when both were measured."""
    if energy_axis is not None:
        return energy_axis
    return a.energy_mode == "measured" and b.energy_mode == "measured"


def dominates(a: Candidate, b: Candidate, energy_axis: bool | None = None) -> bool:
    """a is at least as good as b everywhere and strictly better somewhere (energy: see energy_counts)."""
    better = False
    for name, sign in OBJECTIVES:
        if name == "energy_j" and not energy_counts(a, b, energy_axis):
            continue
        va, vb = sign * getattr(a, name), sign * getattr(b, name)
        if va < vb:
            return False
        if va > vb:
            better = True
    return better


def non_dominated(candidates: list[Candidate], energy_axis: bool | None = None) -> list[Candidate]:
    """The candidates no other candidate dominates, in their given order (ties all kept).

    `energy_axis=None` compares energy between two measured candidates only: with every candidate
    measured that is the forced axis, with at most one measured it is no axis at all. A mix is no consistent order (a
    measured a beats an estimated b, b beats a measured c, yet a may lose to c on energy), so it keeps
    the archive's answer (`_archive`), as do NaN objectives, which compare as ties."""
    if energy_axis is None:
        measured = sum(c.energy_mode == "measured" for c in candidates)
        if measured == len(candidates):
            energy_axis = True
        elif measured <= 1:
            energy_axis = False
        else:
            return _archive(candidates, None)
    axes = [(name, sign) for name, sign in OBJECTIVES if energy_axis or name != "energy_j"]
    vectors = [tuple(sign * getattr(c, name) for name, sign in axes) for c in candidates]
    if any(x != x for v in vectors for x in v):  # NaN
        return _archive(candidates, energy_axis)
    kept = set(maximal_vectors(vectors))
    return _in_order(candidates, [c for c, v in zip(candidates, vectors, strict=True) if v in kept])


def maximal_vectors(vectors: Sequence[tuple[float, ...]]) -> list[tuple[float, ...]]:
    """The distinct vectors no other one is >= everywhere (higher is better on every axis).

    In descending lexicographic order a vector can only be dominated by one before it, and if by any,
    then by a maximal one (dominance is transitive): so each is compared with the maximal ones found so
    far, never removed again, and identical vectors are compared once."""
    maximal: list[tuple[float, ...]] = []
    rests: list[tuple[float, ...]] = []  # the maximal ones without the first axis, which is sorted already
    for v in sorted(set(vectors), reverse=True):
        rest = v[1:]
        # m precedes v and differs, so >= on the other axes dominates; the nearest maximal ones are the likeliest
        if not any(all(map(ge, m, rest)) for m in reversed(rests)):
            maximal.append(v)
            rests.append(rest)
    return maximal


def _archive(candidates: list[Candidate], energy_axis: bool | None) -> list[Candidate]:
    """The front kept as an archive, in arrival order: a candidate joins unless a member dominates it, and
    evicts the members it dominates. O(n * front); for the cases without a consistent order only."""
    front: list[Candidate] = []
    for c in candidates:
        if any(dominates(f, c, energy_axis) for f in front):
            continue
        front = [f for f in front if not dominates(c, f, energy_axis)]
        front.append(c)
    return _in_order(candidates, front)


def _in_order(candidates: list[Candidate], front: list[Candidate]) -> list[Candidate]:
    """`front` in the candidates' order (a candidate object listed twice goes where it was listed last)."""
    order = {id(c): i for i, c in enumerate(candidates)}
    return sorted(front, key=lambda c: order[id(c)])


def pareto_front(events: Iterable[Envelope], energy_axis: bool | None = None) -> ParetoFront:
    """The front of every evaluated candidate; energy an objective only if forced (`energy_axis=True`)
    or, by default, when a counter measured every candidate's energy."""
    decisions: dict[tuple[str, int], EpisodeDecided] = {}
    results: list[tuple[str, EvaluateCompleted]] = []
    promoted: dict[tuple[str, int], EvaluateCompleted] = {}
    baseline_size: dict[str, int] = {}
    for env in events:
        data = env.data
        if isinstance(data, EpisodeDecided):
            decisions.setdefault((env.experiment_id, data.episode), data)
        elif isinstance(data, EvaluateCompleted) and data.purpose == "promotion":
            promoted.setdefault((env.experiment_id, data.episode), data)  # the larger evaluation, when there is one
        elif isinstance(data, EvaluateCompleted):
            results.append((env.experiment_id, data))
            if data.episode == 0:
                baseline_size.setdefault(env.experiment_id, data.size_bytes)
    seen: set[tuple[str, int]] = set()
    candidates: list[Candidate] = []
    for exp, r in results:
        if (exp, r.episode) in seen:  # a repeated evaluation of the same episode counts once
            continue
        seen.add((exp, r.episode))
        r = promoted.get((exp, r.episode), r)
        decision = decisions.get((exp, r.episode))
        base = baseline_size.get(exp)
        candidates.append(
            Candidate(
                experiment_id=exp,
                episode=r.episode,
                method="baseline" if r.episode == 0 else (decision.method or "?") if decision else "?",
                params={} if decision is None else dict(decision.params),
                task=r.task,
                accuracy=r.accuracy,
                ci_low=r.ci_low,
                ci_high=r.ci_high,
                n=r.n,
                latency_ms_per_token=r.latency.decode_ms_per_token,
                latency_iqr_ms=r.latency.decode_ms_iqr if (r.latency.repetitions or 0) > 1 else None,
                peak_rss_mb=r.peak_rss_mb,
                runtime=r.latency.runtime,
                size_bytes=r.size_bytes,
                energy_j=r.energy.joules,
                energy_mode=r.energy.mode,
                compression_ratio=round(base / r.size_bytes, 4) if base and r.size_bytes else None,
                promoted=r.purpose == "promotion",
                secondary={x.task: x.value for x in r.secondary},
            )
        )
    candidates.sort(key=lambda c: (c.experiment_id, c.episode))
    if energy_axis is None:
        energy_axis = bool(candidates) and all(c.energy_mode == "measured" for c in candidates)
    objectives = [name for name, _ in OBJECTIVES if energy_axis or name != "energy_j"]
    return ParetoFront(objectives=objectives, candidates=candidates, front=non_dominated(candidates, energy_axis))


def hypervolume(points: list[tuple[float, ...]], reference: tuple[float, ...]) -> float:
    """Volume dominated by `points` (every objective minimised) up to `reference`: the region that is
    worse than some point and better than the reference. Exact, by slicing along the first axis."""
    pts = sorted({p for p in points if all(x < r for x, r in zip(p, reference, strict=True))})
    if not pts:
        return 0.0
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in pts)
    volume = 0.0
    for i, p in enumerate(pts):
        upper = pts[i + 1][0] if i + 1 < len(pts) else reference[0]
        if upper > p[0]:
            volume += (upper - p[0]) * hypervolume([q[1:] for q in pts[: i + 1]], reference[1:])
    return volume
