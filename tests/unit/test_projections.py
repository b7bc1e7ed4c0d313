from __future__ import annotations

from greenai.projections.experiment import fold_experiment
from greenai.projections.pareto import pareto_front
from greenai.projections.skills import skill_memory
from tests import factories as f


def test_pareto_front_keeps_exactly_the_non_dominated_points() -> None:
    events = [
        f.run(), f.spec(),
        f.evaluated("e", 0, acc=0.60, ms=20, mem=500, size=4000),  # baseline: most accurate
        f.decided("e", 1), f.evaluated("e", 1, acc=0.55, ms=10, mem=300, size=1000),  # trade-off: kept
        f.decided("e", 2), f.evaluated("e", 2, acc=0.50, ms=12, mem=350, size=1200),  # dominated by 1
        f.decided("e", 3), f.evaluated("e", 3, acc=0.55, ms=10, mem=300, size=1000, joules=0.5),  # dominates 1
    ]  # fmt: skip
    front = pareto_front(events, energy_axis=True)  # ep 3 beats ep 1 on (estimated) energy alone: forced
    assert [c.episode for c in front.candidates] == [0, 1, 2, 3]
    assert sorted(c.episode for c in front.front) == [0, 3]
    ep3 = next(c for c in front.front if c.episode == 3)
    assert ep3.compression_ratio == 4.0
    assert ep3.method == "autoround"


def test_pareto_front_counts_a_repeated_evaluation_once() -> None:
    events = [f.run(), f.evaluated("e", 0, 0.5, 10, 10, 10), f.evaluated("e", 0, 0.9, 1, 1, 1)]
    front = pareto_front(events)
    assert len(front.candidates) == 1
    assert front.candidates[0].accuracy == 0.5


def test_pareto_front_is_a_pure_function_of_the_events() -> None:
    events = [
        f.run(),
        f.evaluated("e", 0, 0.6, 20, 500, 4000),
        f.decided("e", 1),
        f.evaluated("e", 1, 0.5, 10, 300, 1000),
    ]
    assert pareto_front(events).model_dump_json() == pareto_front(list(events)).model_dump_json()


def test_experiment_state_follows_an_episode_through_its_life() -> None:
    events = [f.run(), f.spec(), f.decided("e", 1)]
    assert fold_experiment("e", events).episodes[1].status == "step 1/1 pending"
    events.append(f.quantize_requested("e", 1))
    assert fold_experiment("e", events).episodes[1].status == "step 1/1 running"
    events.append(f.quantized("e", 1))
    assert fold_experiment("e", events).episodes[1].status == "compressed"
    events.append(f.evaluate_requested("e", 1))
    events.append(f.evaluated("e", 1, 0.5, 10, 10, 10))
    state = fold_experiment("e", events)
    assert state.episodes[1].status == "evaluated"
    assert state.episodes[1].finished


def test_a_non_final_failure_leaves_the_episode_running() -> None:
    events = [
        f.run(),
        f.spec(),
        f.decided("e", 1),
        f.quantize_requested("e", 1),
        f.failed("e", "e-ep1-s0-quantize", 1, final=False),
    ]
    assert fold_experiment("e", events).episodes[1].status == "step 1/1 running"
    events.append(f.failed("e", "e-ep1-s0-quantize", 1, final=True))
    assert fold_experiment("e", events).episodes[1].status == "failed"


def test_skill_memory_aggregates_across_experiments_relative_to_each_baseline() -> None:
    events = []
    for exp, acc in (("a", 0.4), ("b", 0.3)):
        events += [
            f.run(exp), f.spec(exp),
            f.evaluated(exp, 0, acc=0.5, ms=20, mem=100, size=4000),
            f.decided(exp, 1, params={"bits": 4}), f.quantize_requested(exp, 1), f.quantized(exp, 1),
            f.evaluated(exp, 1, acc=acc, ms=10, mem=50, size=1000),
        ]  # fmt: skip
    events += [
        f.run("c"),
        f.spec("c"),
        f.decided("c", 1, params={"bits": 2}),
        f.quantize_requested("c", 1),
        f.failed("c", "c-ep1-s0-quantize", 1),
    ]
    memory = skill_memory(events)
    by_bits = {s.params["bits"]: s for s in memory.skills}
    four = by_bits[4]
    assert (four.family, four.method, four.trials, four.failures) == ("llama", "autoround", 2, 0)
    assert four.mean_accuracy_retained == 0.7  # (0.8 + 0.6) / 2
    assert four.mean_size_ratio == 0.25
    assert four.mean_latency_ratio == 0.5
    two = by_bits[2]
    assert (two.trials, two.failures) == (1, 1)
    assert two.mean_accuracy_retained is None
    assert "group size" in two.failure_reasons[0]


def test_skill_memory_handles_results_that_arrive_before_the_baseline() -> None:
    events = [
        f.run(), f.spec(), f.decided("e", 1), f.quantize_requested("e", 1), f.quantized("e", 1),
        f.evaluated("e", 1, acc=0.25, ms=10, mem=50, size=1000),
        f.evaluated("e", 0, acc=0.5, ms=20, mem=100, size=4000),
    ]  # fmt: skip
    (skill,) = skill_memory(events).skills
    assert skill.mean_accuracy_retained == 0.5


def test_hypervolume_by_hand() -> None:
    from greenai.projections.pareto import hypervolume

    assert hypervolume([(1.0, 1.0)], (3.0, 3.0)) == 4.0
    # two staircase points: boxes of 2 and 2 that overlap in 1
    assert hypervolume([(1.0, 2.0), (2.0, 1.0)], (3.0, 3.0)) == 3.0
    assert hypervolume([(1.0, 2.0), (2.0, 1.0), (2.5, 2.5)], (3.0, 3.0)) == 3.0  # a dominated point adds nothing
    assert hypervolume([(0.0, 0.0, 0.0)], (1.0, 2.0, 3.0)) == 6.0
    assert hypervolume([(0.0, 1.0, 1.0), (1.0, 0.0, 1.0)], (2.0, 2.0, 2.0)) == 3.0  # boxes of 2 and 2, overlap 1
    assert hypervolume([(5.0, 5.0)], (3.0, 3.0)) == 0.0
