"""The energy axis of the front: only where a counter measured it, unless forced."""

from __future__ import annotations

from greenai.events import Envelope, new_event
from greenai.events.results import Energy, EvaluateCompleted
from greenai.projections.pareto import pareto_front
from tests import factories as f


def with_mode(env: Envelope, mode: str) -> Envelope:
    data = env.data
    assert isinstance(data, EvaluateCompleted)
    energy = Energy(joules=data.energy.joules, mode=mode, detail="t")  # type: ignore[arg-type]
    return new_event(env.experiment_id, data.model_copy(update={"energy": energy}), producer="t")


def log(mode: str) -> list[Envelope]:
    return [
        f.run(), with_mode(f.evaluated("e", 0, acc=0.6, ms=20, mem=500, size=4000), mode),
        f.decided("e", 1), with_mode(f.evaluated("e", 1, acc=0.55, ms=10, mem=300, size=1000, joules=2.0), mode),
        f.decided("e", 2), with_mode(f.evaluated("e", 2, acc=0.55, ms=10, mem=300, size=1000, joules=1.0), mode),
    ]  # fmt: skip


def test_an_estimated_energy_is_no_objective() -> None:
    front = pareto_front(log("estimated"))
    assert "energy_j" not in front.objectives
    assert sorted(c.episode for c in front.front) == [0, 1, 2]  # 1 and 2 differ only in estimated joules


def test_a_measured_energy_is_an_objective() -> None:
    front = pareto_front(log("measured"))
    assert "energy_j" in front.objectives
    assert sorted(c.episode for c in front.front) == [0, 2]


def test_the_axis_can_be_forced_on_and_off() -> None:
    assert sorted(c.episode for c in pareto_front(log("estimated"), energy_axis=True).front) == [0, 2]
    assert sorted(c.episode for c in pareto_front(log("measured"), energy_axis=False).front) == [0, 1, 2]
    assert "energy_j" not in pareto_front(log("measured"), energy_axis=False).objectives


def test_one_estimated_figure_keeps_the_axis_off() -> None:
    events = log("measured")
    events[3] = with_mode(events[3], "estimated")
    front = pareto_front(events)
    assert "energy_j" not in front.objectives
    assert sorted(c.episode for c in front.front) == [0, 1, 2]
