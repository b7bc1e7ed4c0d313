from __future__ import annotations

from greenai.events import Envelope, new_event
from greenai.events.experiment import ExperimentCompleted, ExperimentFailed
from greenai.events.jobs import EvaluateRequested, QuantizeRequested
from greenai.projections.experiment import fold_experiment
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.planner import plan, wants_decision
from greenai.services.coordinator.policies.base import Decision
from greenai.services.coordinator.policies.grid import GRID, GridPolicy

from tests import factories as f

QUANT = Decision("quantize", "autoround", {"bits": 4}, "because")


def keys(events: list[Envelope], decision: Decision | None = None) -> list[str]:
    return [p.key for p in plan(fold_experiment("e", events), decision, "grid")]


def test_nothing_happens_before_the_spec_is_known() -> None:
    assert keys([f.run()]) == []


def test_first_step_requests_the_baseline_and_a_decision() -> None:
    events = [f.run(), f.spec()]
    assert wants_decision(fold_experiment("e", events))
    assert keys(events, QUANT) == ["baseline:evaluate", "episode:1:decided"]


def test_a_decision_becomes_a_job_then_an_evaluation() -> None:
    events = [f.run(), f.spec(), f.evaluate_requested("e", 0), f.decided("e", 1)]
    planned = plan(fold_experiment("e", events), None, "grid")
    assert [p.key for p in planned] == ["episode:1:quantize"]
    assert isinstance(planned[0].data, QuantizeRequested)
    events += [f.quantize_requested("e", 1), f.quantized("e", 1)]
    planned = plan(fold_experiment("e", events), None, "grid")
    assert [p.key for p in planned] == ["episode:1:evaluate"]
    data = planned[0].data
    assert isinstance(data, EvaluateRequested)
    assert data.target.kind == "artifact" and data.target.path == "/a/1"


def test_one_episode_at_a_time_and_completion_after_the_last() -> None:
    events = [
        f.run(episodes=1),
        f.spec(),
        f.evaluate_requested("e", 0),
        f.decided("e", 1),
        f.quantize_requested("e", 1),
    ]
    assert not wants_decision(fold_experiment("e", events))
    assert keys(events, QUANT) == []
    events += [f.quantized("e", 1), f.evaluate_requested("e", 1), f.evaluated("e", 1, 0.5, 1, 1, 1)]
    assert keys(events) == []  # the baseline is still being evaluated
    events.append(f.evaluated("e", 0, 0.6, 2, 2, 2))
    planned = plan(fold_experiment("e", events), None, "grid")
    assert [p.key for p in planned] == ["completed"]
    assert isinstance(planned[0].data, ExperimentCompleted)


def test_a_failed_episode_lets_the_run_move_on() -> None:
    events = [
        f.run(),
        f.spec(),
        f.evaluate_requested("e", 0),
        f.decided("e", 1),
        f.quantize_requested("e", 1),
        f.failed("e", "e-ep1-quantize", 1),
    ]
    assert keys(events, QUANT) == ["episode:2:decided"]


def test_a_failed_baseline_fails_the_experiment() -> None:
    events = [f.run(), f.spec(), f.evaluate_requested("e", 0), f.failed("e", "e-ep0-evaluate", 0)]
    planned = plan(fold_experiment("e", events), QUANT, "grid")
    assert [p.key for p in planned] == ["failed"]
    assert isinstance(planned[0].data, ExperimentFailed)


def test_a_closed_experiment_plans_nothing() -> None:
    closed = new_event("e", ExperimentCompleted(reason="done", episodes_run=0), producer="t")
    assert keys([f.run(), f.spec(), closed], QUANT) == []


def test_grid_policy_walks_the_grid_skipping_what_was_tried() -> None:
    policy = GridPolicy()
    state = fold_experiment("e", [f.run(), f.spec()])
    first = policy.decide(state, SkillMemory(skills=[]))
    assert (first.method, first.params) == (GRID[0][0], GRID[0][1])
    state = fold_experiment("e", [f.run(), f.spec(), f.decided("e", 1, GRID[0][0], dict(GRID[0][1]))])
    second = policy.decide(state, SkillMemory(skills=[]))
    assert (second.method, second.params) == (GRID[1][0], GRID[1][1])
    events = [f.run(), f.spec()] + [f.decided("e", i + 1, m, dict(p)) for i, (m, p, _) in enumerate(GRID)]
    assert policy.decide(fold_experiment("e", events), SkillMemory(skills=[])).action == "end"
