"""Per-layer bit widths under an average-bits budget: a multiple-choice knapsack, solved greedily.

Each layer picks one width; its cost is parameters x bits, its penalty the measured sensitivity at
that width. Every layer starts at the smallest width; then, best ratio first, a layer moves up its
lower convex hull of (cost, penalty) while the budget allows (the LP relaxation's order, so no
upgrade with a worse penalty-per-bit is taken before a better one); a last pass spends what is left
on any upgrade that still fits, largest penalty drop first. Pure Python: no model, no I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

Scores = Mapping[str, Mapping[int, float]]


def average_bits(assignment: Mapping[str, int], sizes: Mapping[str, int]) -> float:
    """Parameter-weighted mean width of the assigned layers (scales and zero points not counted)."""
    total = sum(sizes[name] for name in assignment)
    if total <= 0:
        raise ValueError("no parameters to average over")
    return sum(sizes[name] * bits for name, bits in assignment.items()) / total


def check_budget(avg_bits: float, widths: tuple[int, ...]) -> None:
    """A budget outside [smallest, largest] width cannot be met (or cannot be spent): refuse it."""
    if not widths:
        raise ValueError("at least one candidate bit width is needed")
    if avg_bits < min(widths):
        raise ValueError(
            f"avg_bits {avg_bits} is below the smallest candidate width {min(widths)}: no assignment can meet it"
        )
    if avg_bits > max(widths):
        raise ValueError(
            f"avg_bits {avg_bits} is above the largest candidate width {max(widths)}: "
            "uniform quantization at that width already fits; add a wider candidate or lower the budget"
        )


def _hull(options: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The lower convex hull of (bits, penalty), from the smallest width; dominated widths dropped."""
    points: list[tuple[int, float]] = []
    for bits, penalty in sorted(options):
        if points and penalty >= points[-1][1]:
            continue  # costs more, helps nothing
        while len(points) >= 2:
            (b0, p0), (b1, p1) = points[-2], points[-1]
            # p1 lies on or above the chord from (b0, p0) to (bits, penalty): not on the hull
            if (p0 - p1) * (bits - b0) <= (p0 - penalty) * (b1 - b0):
                points.pop()
            else:
                break
        points.append((bits, penalty))
    return points


def assign_bits(sizes: Mapping[str, int], scores: Scores, avg_bits: float) -> dict[str, int]:
    """The width of each layer, with `average_bits(result, sizes) <= avg_bits`."""
    if set(sizes) != set(scores):
        raise ValueError("sizes and scores must name the same layers")
    widths = tuple(sorted({b for per in scores.values() for b in per}))
    check_budget(avg_bits, widths)
    for name, per in scores.items():
        if set(per) != set(widths):
            raise ValueError(f"layer {name} is scored at widths {sorted(per)}, expected {list(widths)}")
    budget = avg_bits * sum(sizes.values())
    smallest = widths[0]
    chosen = {name: smallest for name in sizes}
    spent = float(sum(sizes[name] * smallest for name in sizes))
    hulls = {name: _hull([(b, float(p)) for b, p in scores[name].items()]) for name in sizes}
    position = {name: 0 for name in sizes}  # every hull starts at the smallest width

    heap: list[tuple[float, str]] = []

    def push(name: str) -> None:
        i = position[name]
        hull = hulls[name]
        if i + 1 < len(hull):
            (b0, p0), (b1, p1) = hull[i], hull[i + 1]
            heapq.heappush(heap, (-(p0 - p1) / (sizes[name] * (b1 - b0)), name))

    for name in sorted(sizes):
        push(name)
    while heap:
        _, name = heapq.heappop(heap)
        i = position[name]
        b0, b1 = hulls[name][i][0], hulls[name][i + 1][0]
        extra = sizes[name] * (b1 - b0)
        if spent + extra > budget + 1e-9:
            continue  # this layer's later upgrades cost even more per step: leave it here
        spent += extra
        chosen[name] = b1
        position[name] = i + 1
        push(name)
    # spend what is left on any upgrade that fits, largest penalty drop first
    while True:
        best: tuple[float, str, int] | None = None
        for name in sorted(sizes):
            for bits in widths:
                extra = sizes[name] * (bits - chosen[name])
                drop = scores[name][chosen[name]] - scores[name][bits]
                if extra > 0 and drop > 0 and spent + extra <= budget + 1e-9 and (best is None or drop > best[0]):
                    best = (drop, name, bits)
        if best is None:
            return chosen
        _, name, bits = best
        spent += sizes[name] * (bits - chosen[name])
        chosen[name] = bits
