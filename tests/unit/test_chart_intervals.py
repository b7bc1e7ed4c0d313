"""The static report's charts (pareto_visualization.html) draw accuracy with its 95 % interval and mark
the uncompressed baseline, as the dashboard does."""

from __future__ import annotations

import pytest

from greenai.projections.pareto import pareto_front
from greenai.shared.reports.charts import BASELINE, pareto_figures
from tests import factories as f


def figures() -> tuple[object, object]:
    events = [f.run(), f.spec(), f.evaluated("e", 0, 0.6, 50, 500, 4000)]
    events += [f.decided("e", 1), f.evaluated("e", 1, 0.15, 30, 300, 2000)]
    events += [f.decided("e", 2), f.evaluated("e", 2, 0.30, 40, 400, 3000)]
    return pareto_figures(pareto_front(events), "t")


def test_accuracy_has_its_interval_and_latency_none() -> None:
    grid, _ = figures()
    first = [t for t in grid.data if t.xaxis == "x"]  # accuracy against latency
    by_name = {t.name: t for t in first}
    baseline = by_name[BASELINE]
    assert list(baseline.x) == [50] and baseline.marker.symbol == "star"
    shown = [t for t in first if t.name != BASELINE]
    bars = {round(y, 3): (round(lo, 3), round(hi, 3)) for t in shown
            for y, lo, hi in zip(t.y, t.error_y.arrayminus, t.error_y.array, strict=True)}  # fmt: skip
    assert bars == {0.15: (0.1, 0.1), 0.3: (0.1, 0.1)}
    assert all(t.error_y.visible and not t.error_x.visible for t in first)


def test_the_latency_memory_panel_has_no_accuracy_bars() -> None:
    grid, _ = figures()
    last = [t for t in grid.data if t.xaxis == "x4"]
    assert last and all(not t.error_x.visible and not t.error_y.visible for t in last)


def test_the_3d_view_marks_the_baseline_and_the_intervals() -> None:
    _, cube = figures()
    by_name = {t.name: t for t in cube.data}
    assert BASELINE in by_name
    assert by_name[BASELINE].error_z.visible
    assert list(by_name[BASELINE].z) == pytest.approx([0.6])


def test_latency_gets_its_spread_once_measured() -> None:
    events = [f.run(), f.spec(), f.evaluated("e", 0, 0.6, 50, 500, 4000, iqr=4.0)]
    events += [f.decided("e", 1), f.evaluated("e", 1, 0.3, 40, 400, 3000, iqr=10.0)]
    grid, _ = pareto_figures(pareto_front(events), "t")
    first = [t for t in grid.data if t.xaxis == "x"]  # accuracy against latency
    bars = {x: half for t in first for x, half in zip(t.x, t.error_x.array, strict=True)}
    assert bars == {50: 2.0, 40: 5.0} and all(t.error_x.visible for t in first)  # IQR drawn centred: half each side
    memory_panel = [t for t in grid.data if t.xaxis == "x4"]  # latency is the x axis there too
    assert all(t.error_x.visible and not t.error_y.visible for t in memory_panel)
