"""Energy break-even against a hand-computed case: a two-step pipeline that pays back, one that never
does, one whose steps' energy was never recorded (an old log), and the labels of each figure."""

from __future__ import annotations

import pytest

from greenai.events import Envelope, new_event
from greenai.events.experiment import Step
from greenai.events.results import Energy, EvaluateCompleted, Latency, PruneCompleted, QuantizeCompleted
from greenai.projections.break_even import break_even, break_even_tokens, joules_per_1k_tokens
from tests import factories as f

EST = "estimated"


def energy(joules: float, seconds: float | None = None, mode: str = EST) -> Energy:
    return Energy(joules=joules, mode=mode, detail="t", seconds=seconds)  # type: ignore[arg-type]


def evaluated(
    n: int, ms: float, joules: float | None, seconds: float = 10.0, mode: str = EST, purpose: str = "episode"
) -> Envelope:
    """An evaluation whose latency phase drew `joules` over `seconds` (None: not recorded, as before v3)."""
    latency = Latency(
        prefill_ms_per_token=1.0, decode_ms_per_token=ms, decode_tokens_per_s=1000 / ms, device="cpu",
        energy=None if joules is None else energy(joules, seconds, mode),
    )  # fmt: skip
    data = EvaluateCompleted(
        job_id=f"e-ep{n}-evaluate-{purpose}", episode=n, task="arc_easy", metric="acc", accuracy=0.5,
        accuracy_stderr=None, ci_low=0.4, ci_high=0.6, n=10, limit=10, latency=latency, peak_rss_mb=1.0,
        size_bytes=1000, energy=energy(300.0, 28.0), wall_s=28.0, purpose=purpose,  # type: ignore[arg-type]
    )  # fmt: skip
    return new_event("e", data, producer="t")


def step(n: int, i: int, kind: str, joules: float | None, mode: str = EST) -> Envelope:
    cls = {"prune": PruneCompleted, "quantize": QuantizeCompleted}[kind]
    data = cls(
        job_id=f"e-ep{n}-s{i}", episode=n, step=i, method="m", params={}, artifact=f.artifact(f"{n}/{i}"),
        bits_per_weight=None, wall_s=1.0, peak_rss_mb=1.0,
        energy=None if joules is None else energy(joules, 5.0, mode),
    )  # fmt: skip
    return new_event("e", data, producer="t")


TWO_STEPS = [Step(kind="prune", method="wanda"), Step(kind="quantize", method="autoround")]


def log() -> list[Envelope]:
    # baseline: 100 J over 10 s = 10 W; 50 ms/token -> 10 W x 50 ms = 500 J per 1,000 tokens
    return [
        f.run(), evaluated(0, ms=50.0, joules=100.0),
        # ep 1: prune 300 J + quantize 900 J = 1,200 J spent; 8 W x 40 ms = 320 J/1k; saves 180 J/1k
        # -> pays back after 1,200 / 180 x 1,000 = 6,666.7 tokens
        f.pipeline("e", 1, TWO_STEPS), step(1, 0, "prune", 300.0), step(1, 1, "quantize", 900.0),
        evaluated(1, ms=40.0, joules=80.0),
        # ep 2: 50 J spent; 10 W x 60 ms = 600 J/1k: uses more than the baseline, never pays back
        f.decided("e", 2), step(2, 0, "quantize", 50.0), evaluated(2, ms=60.0, joules=100.0),
        # ep 3: a step from before energy was recorded: unknown, not zero
        f.decided("e", 3), step(3, 0, "quantize", None), evaluated(3, ms=40.0, joules=80.0),
    ]  # fmt: skip


def test_the_pure_arithmetic_matches_the_hand_computed_figures() -> None:
    assert break_even_tokens(1200.0, 500.0, 320.0) == pytest.approx(6666.667, abs=1e-3)
    assert break_even_tokens(50.0, 500.0, 600.0) is None  # costs more per token: never
    assert break_even_tokens(50.0, 500.0, 500.0) is None  # saves nothing: never
    assert break_even_tokens(0.0, 500.0, 320.0) == 0.0
    lat = Latency(prefill_ms_per_token=1, decode_ms_per_token=50, decode_tokens_per_s=20, device="cpu")
    assert joules_per_1k_tokens(lat) is None  # no energy over the timed runs: nothing to compute from
    assert joules_per_1k_tokens(lat.model_copy(update={"energy": energy(100.0, 10.0)})) == pytest.approx(500.0)
    assert joules_per_1k_tokens(lat.model_copy(update={"energy": energy(100.0, 0.0)})) is None  # no division by 0


def test_a_two_step_pipeline_sums_its_steps_and_pays_back() -> None:
    r = break_even(log())[0]
    assert (r.episode, r.steps, r.pipeline) == (1, 2, "wanda → autoround")
    assert r.spent_j == pytest.approx(1200.0)
    assert (r.baseline_j_per_1k, r.candidate_j_per_1k) == (pytest.approx(500.0), pytest.approx(320.0))
    assert r.saved_j_per_1k == pytest.approx(180.0)
    assert r.tokens == pytest.approx(6666.667, abs=1e-3)
    assert r.pays_back is True
    assert r.mode == "estimated"


def test_a_candidate_that_costs_more_per_token_never_pays_back() -> None:
    r = next(r for r in break_even(log()) if r.episode == 2)
    assert r.saved_j_per_1k == pytest.approx(-100.0)
    assert r.tokens is None and r.pays_back is False
    assert "never pays back" in r.note


def test_a_step_without_recorded_energy_is_unknown_not_free() -> None:
    r = next(r for r in break_even(log()) if r.episode == 3)
    assert r.spent_j is None and r.tokens is None and r.pays_back is None
    assert r.mode == "unknown"
    assert "not recorded" in r.note


def test_a_pipeline_missing_a_completed_step_is_unknown() -> None:
    events = [*log()[:3], log()[4], evaluated(1, ms=40.0, joules=80.0)]  # step 0's completion absent
    r = break_even(events)[0]
    assert r.spent_j is None and r.mode == "unknown"


def test_measured_only_when_every_figure_was_measured() -> None:
    measured = [
        f.run(), evaluated(0, 50.0, 100.0, mode="measured"), f.decided("e", 1),
        step(1, 0, "quantize", 50.0, mode="measured"), evaluated(1, 40.0, 80.0, mode="measured"),
    ]  # fmt: skip
    assert break_even(measured)[0].mode == "measured"
    mixed = [*measured[:3], step(1, 0, "quantize", 50.0), measured[4]]  # one estimated step
    assert break_even(mixed)[0].mode == "estimated"


def test_the_promoted_evaluation_is_read_like_the_front_reads_it_and_candidates_filter() -> None:
    events = [*log(), evaluated(1, ms=30.0, joules=80.0, purpose="promotion")]  # 8 W x 30 ms = 240 J/1k
    r = break_even(events, candidates={("e", 1)})
    assert [x.episode for x in r] == [1]
    assert r[0].candidate_j_per_1k == pytest.approx(240.0)
    assert r[0].tokens == pytest.approx(1200.0 / 260.0 * 1000)


def test_no_baseline_energy_is_unknown() -> None:
    events = [f.run(), evaluated(0, 50.0, None), f.decided("e", 1), step(1, 0, "quantize", 5.0), evaluated(1, 40, 80)]
    r = break_even(events)[0]
    assert r.mode == "unknown" and r.pays_back is None
    assert "baseline" in r.note


def test_the_fold_is_pure() -> None:
    events = log()
    assert [r.model_dump() for r in break_even(events)] == [r.model_dump() for r in break_even(list(events))]


def rendered(table: object) -> str:
    from rich.console import Console

    console = Console(record=True, width=250)
    console.print(table)
    return console.export_text()


def test_the_table_says_estimated_next_to_every_estimated_figure() -> None:
    from greenai.cli.energy_report import break_even_table, tokens_text

    text = rendered(break_even_table(break_even(log())))
    assert "1,200.0 J (estimated)" in text and "500.0 J (estimated)" in text
    assert "after 6.7 k tokens (estimated)" in text
    assert "never" in text and "unknown" in text
    assert (tokens_text(999), tokens_text(6666.7), tokens_text(2.5e6)) == ("999 tokens", "6.7 k tokens", "2.5 M tokens")


def test_the_front_hides_an_estimated_energy_column_unless_forced() -> None:
    from greenai.cli.render import front_table
    from greenai.projections.pareto import pareto_front

    events = log()
    assert "energy J" not in rendered(front_table(pareto_front(events)))
    assert "no hardware counter measured it" in rendered(front_table(pareto_front(events)))
    forced = rendered(front_table(pareto_front(events, energy_axis=True)))
    assert "energy J" in forced and "300.0 (estimated)" in forced


def test_the_front_shows_each_latency_spread_and_the_dominated_baseline_as_reference() -> None:
    from greenai.cli.render import front_table
    from greenai.projections.pareto import pareto_front

    def with_spread(env: Envelope, iqr: float) -> Envelope:
        data = env.data
        assert isinstance(data, EvaluateCompleted)
        latency = data.latency.model_copy(update={"repetitions": 9, "decode_ms_iqr": iqr})
        return new_event("e", data.model_copy(update={"latency": latency}), producer="t")

    events = log()
    events = [with_spread(e, 3.7) if e.type == "evaluate.completed" else e for e in events]
    front = pareto_front(events)
    assert 0 not in {c.episode for c in front.front}  # episode 1 is as good and faster
    text = rendered(front_table(front))
    assert "50.0 (IQR 3.7)" in text and "40.0 (IQR 3.7)" in text
    assert "0 (baseline, not on the front)" in text
    # without repetitions (events before v2) no spread is claimed
    assert "IQR" not in rendered(front_table(pareto_front(log())))
