"""The Pareto fold against a naive reference: every candidate compared with every other one.

The fold groups identical objective vectors and compares each distinct vector with the maximal ones only;
these tests check it keeps exactly what all-pairs dominance keeps, ties included, in the candidates' order.
"""

from __future__ import annotations

import random

import pytest

from greenai.events import Envelope, new_event
from greenai.events.results import Energy, EvaluateCompleted, Latency
from greenai.projections.pareto import Candidate, dominates, maximal_vectors, non_dominated, pareto_front
from tests import factories as f


def all_pairs(candidates: list[Candidate], energy_axis: bool | None) -> list[Candidate]:
    return [c for c in candidates if not any(dominates(o, c, energy_axis) for o in candidates if o is not c)]


def archive(candidates: list[Candidate], energy_axis: bool | None) -> list[Candidate]:
    """The fold as it was before the grouping (an archive of the front, in arrival order)."""
    front: list[Candidate] = []
    for c in candidates:
        if any(dominates(x, c, energy_axis) for x in front):
            continue
        front = [x for x in front if not dominates(c, x, energy_axis)]
        front.append(c)
    return [c for c in candidates if any(c is x for x in front)]


def candidate(i: int, acc: float, ms: float, mem: float, size: int, joules: float, mode: str) -> Candidate:
    return Candidate(
        experiment_id=f"e{i % 7}", episode=i, method="m", params={}, task="t", accuracy=acc, ci_low=0.0,
        ci_high=1.0, n=10, latency_ms_per_token=ms, peak_rss_mb=mem, size_bytes=size, energy_j=joules,
        energy_mode=mode,
    )  # fmt: skip


def random_candidates(rng: random.Random, n: int, levels: int, modes: tuple[str, ...]) -> list[Candidate]:
    """Few levels per axis: many exact ties and many dominated points; values repeat across candidates."""
    return [
        candidate(
            i, rng.randrange(levels) / levels, float(rng.randrange(levels)), 100.0 + rng.randrange(levels),
            1000 * (1 + rng.randrange(levels)), float(rng.randrange(levels)), rng.choice(modes),
        )
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("energy_axis", [True, False, None])
@pytest.mark.parametrize("modes", [("estimated",), ("measured",)])
def test_the_front_is_exactly_what_all_pairs_dominance_keeps(seed: int, energy_axis: bool | None, modes: tuple) -> None:
    rng = random.Random(seed)
    candidates = random_candidates(rng, rng.randrange(1, 300), rng.choice([2, 3, 5, 20]), modes)
    front = non_dominated(candidates, energy_axis)
    assert front == all_pairs(candidates, energy_axis)
    assert [id(c) for c in front] == [id(c) for c in all_pairs(candidates, energy_axis)]  # the same objects


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("energy_axis", [True, False, None])
def test_mixed_energy_modes_keep_the_archives_answer(seed: int, energy_axis: bool | None) -> None:
    """Energy compared only between two measured candidates (None) is no consistent order: the result is
    the archive's, as before; forced on or off it is all-pairs dominance again."""
    rng = random.Random(100 + seed)
    candidates = random_candidates(rng, rng.randrange(1, 200), rng.choice([2, 3, 5]), ("estimated", "measured"))
    assert non_dominated(candidates, energy_axis) == archive(candidates, energy_axis)
    if energy_axis is not None:
        assert non_dominated(candidates, energy_axis) == all_pairs(candidates, energy_axis)


def test_identical_candidates_are_all_kept_and_a_better_one_removes_them_all() -> None:
    tie = [candidate(i, 0.5, 10.0, 300.0, 1000, 1.0, "estimated") for i in range(50)]
    other = candidate(50, 0.9, 20.0, 300.0, 1000, 1.0, "estimated")  # a trade-off: more accurate, slower
    assert non_dominated([*tie, other]) == [*tie, other]
    better = candidate(51, 0.5, 9.0, 300.0, 1000, 1.0, "estimated")
    assert non_dominated([*tie[:25], better, *tie[25:], other]) == [better, other]


def test_nan_objectives_keep_the_archives_answer() -> None:
    rng = random.Random(7)
    candidates = random_candidates(rng, 60, 3, ("estimated",))
    candidates[3] = candidates[3].model_copy(update={"latency_ms_per_token": float("nan")})
    candidates[9] = candidates[9].model_copy(update={"peak_rss_mb": float("nan")})
    assert non_dominated(candidates, False) == archive(candidates, False)


def test_the_order_and_the_edges() -> None:
    assert non_dominated([]) == []
    one = candidate(0, 0.5, 1.0, 1.0, 1, 1.0, "measured")
    assert non_dominated([one]) == [one]
    assert maximal_vectors([(1.0,), (3.0,), (3.0,), (2.0,)]) == [(3.0,)]
    assert maximal_vectors([(1.0, 2.0), (2.0, 1.0), (1.0, 1.0), (-0.0, 2.0), (0.0, 2.0)]) == [(2.0, 1.0), (1.0, 2.0)]
    big = 2**60  # sizes compare as integers: no float rounding merges two of them
    assert len(non_dominated([candidate(0, 0.5, 1.0, 1.0, big, 1.0, "estimated"),
                              candidate(1, 0.5, 1.0, 1.0, big + 1, 1.0, "estimated")])) == 1  # fmt: skip


def evaluation(exp: str, n: int, acc: float, ms: float, size: int, purpose: str = "episode") -> Envelope:
    return new_event(
        exp,
        EvaluateCompleted(
            job_id=f"{exp}-{n}-{purpose}", episode=n, task="arc_easy", metric="acc", accuracy=acc,
            accuracy_stderr=None, ci_low=0.0, ci_high=1.0, n=10, limit=10, purpose=purpose,
            latency=Latency(prefill_ms_per_token=1.0, decode_ms_per_token=ms, decode_tokens_per_s=1.0, device="cpu"),
            peak_rss_mb=300.0, size_bytes=size, energy=Energy(joules=1.0, mode="estimated", detail=""), wall_s=1.0,
        ),
        producer="t",
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(8))
def test_the_fold_over_a_log_with_superseded_evaluations_equals_all_pairs(seed: int) -> None:
    """Repeated evaluations count once and a promotion's evaluation replaces the episode's: the front is
    all-pairs dominance over what is left, never over a superseded value."""
    rng = random.Random(seed)
    events: list[Envelope] = []
    for e in range(rng.randrange(1, 6)):
        exp = f"x{e}"
        events += [f.run(exp), f.spec(exp)]
        for n in range(rng.randrange(1, 12)):
            if n:
                events.append(f.decided(exp, n, params={"bits": rng.choice([2, 4, 8])}))
            for _ in range(rng.choice([1, 1, 2])):  # sometimes evaluated twice: the first one counts
                events.append(
                    evaluation(exp, n, rng.randrange(4) / 4, float(rng.randrange(4)), 1000 * rng.randrange(1, 4))
                )
            if rng.random() < 0.3:  # promoted: the larger evaluation supersedes the episode's
                events.append(evaluation(exp, n, rng.randrange(4) / 4, float(rng.randrange(4)), 1000, "promotion"))
    rng.shuffle(events)  # the fold is keyed by (experiment, episode), not by arrival order across experiments
    front = pareto_front(events)
    assert front.front == all_pairs(front.candidates, False)
    assert front.objectives == ["accuracy", "latency_ms_per_token", "peak_rss_mb", "size_bytes"]


def test_a_superseded_evaluation_that_would_dominate_does_not() -> None:
    events = [
        f.run(), f.spec(),
        evaluation("e", 0, 0.6, 20.0, 4000),
        f.decided("e", 1), evaluation("e", 1, 0.9, 1.0, 1000),  # would dominate the baseline...
        evaluation("e", 1, 0.5, 30.0, 1000, "promotion"),  # ...but its promotion says otherwise
        f.decided("e", 2), evaluation("e", 2, 0.55, 25.0, 5000), evaluation("e", 2, 0.1, 1.0, 1, "episode"),
    ]  # fmt: skip
    front = pareto_front(events)
    assert [(c.episode, c.accuracy, c.promoted) for c in front.candidates] == [
        (0, 0.6, False), (1, 0.5, True), (2, 0.55, False)
    ]  # fmt: skip
    assert [c.episode for c in front.front] == [0, 1]
