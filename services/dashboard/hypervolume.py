"""Hypervolume over episodes: how much of the objective space the front dominates after each episode.

The objectives are the search benchmark's (`bench/search_efficiency.py`): accuracy up, decode
latency and size on disk down — the latter two relative to the uncompressed baseline, so one curve
reads the same whatever the model. The reference point is accuracy 0 and twice the baseline's latency
and size: the baseline alone is worth its accuracy, a candidate slower or larger than twice the
baseline adds nothing. A pure fold over the Pareto fold's candidates in episode order; the curve is
recomputed only from the first candidate that changed (a promotion replaces a candidate's scores).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from greenai.projections.pareto import Candidate

REFERENCE = (1.0, 2.0, 2.0)  # (1 - accuracy, latency / baseline's, size / baseline's)
Point = tuple[float, float, float]


def _point(c: Candidate, base: Candidate) -> Point | None:
    if base.latency_ms_per_token <= 0 or base.size_bytes <= 0:
        return None
    return (1.0 - c.accuracy, c.latency_ms_per_token / base.latency_ms_per_token, c.size_bytes / base.size_bytes)


def _covers(q: Point, p: Point) -> bool:
    """q is at least as good as p everywhere (every coordinate minimised)."""
    return q[0] <= p[0] and q[1] <= p[1] and q[2] <= p[2]


def _area(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """2D hypervolume by one sweep: each point that lowers the best y so far adds a rectangle."""
    area, best = 0.0, ref[1]
    for x, y in sorted(p for p in points if p[0] < ref[0] and p[1] < ref[1]):
        if y < best:
            area += (ref[0] - x) * (best - y)
            best = y
    return area


def volume(points: list[Point], ref: Point = REFERENCE) -> float:
    """3D hypervolume: slices along the first axis, each a 2D sweep (O(n² log n); the general
    `projections.pareto.hypervolume` gives the same, slower)."""
    pts = sorted(p for p in points if p[0] < ref[0] and p[1] < ref[1] and p[2] < ref[2])
    total = 0.0
    for i, p in enumerate(pts):
        upper = pts[i + 1][0] if i + 1 < len(pts) else ref[0]
        if upper > p[0]:
            total += (upper - p[0]) * _area([(q[1], q[2]) for q in pts[: i + 1]], (ref[1], ref[2]))
    return total


@dataclass
class HypervolumeCurve:
    """The curve of one experiment, kept between calls so a new result costs one hypervolume."""

    keys: list[tuple[int, Point]] = field(default_factory=list)
    volumes: list[float] = field(default_factory=list)
    fronts: list[list[Point]] = field(default_factory=list)  # the front after each episode

    def update(self, candidates: list[Candidate]) -> list[dict[str, float | int]]:
        """[{episode, hypervolume}] after the baseline and each evaluated episode, in episode order."""
        base = next((c for c in candidates if c.episode == 0), None)
        if base is None:
            self.keys, self.volumes, self.fronts = [], [], []
            return []
        keys = [(c.episode, p) for c in sorted(candidates, key=lambda c: c.episode) if (p := _point(c, base))]
        same = 0
        while same < min(len(keys), len(self.keys)) and keys[same] == self.keys[same]:
            same += 1
        self.keys, self.volumes, self.fronts = keys, self.volumes[:same], self.fronts[:same]
        for _, p in keys[same:]:
            front = self.fronts[-1] if self.fronts else []
            if any(_covers(q, p) for q in front):  # the front is unchanged: so is its volume
                self.fronts.append(front)
                self.volumes.append(self.volumes[-1])
                continue
            front = [q for q in front if not _covers(p, q)] + [p]
            self.fronts.append(front)
            self.volumes.append(volume(front))
        return [{"episode": e, "hypervolume": round(v, 6)} for (e, _), v in zip(keys, self.volumes, strict=True)]
