from __future__ import annotations

from pathlib import Path

from greenai.services.evaluation.job import evaluate_folder, wilson_interval


def test_wilson_interval_matches_hand_computation() -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.15 < high < 0.17


def test_evaluating_a_tiny_model_gives_every_metric(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    r = evaluate_folder(str(tiny_model_dir), "arc_easy", str(data_dir), 4, 0, str(tmp_path))
    assert r["n"] == 4
    assert 0.0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1.0
    assert r["accuracy"] * 4 == round(r["accuracy"] * 4)  # a fraction of 4 items
    lat = r["latency"]
    assert lat["prefill_ms_per_token"] > 0 and lat["decode_ms_per_token"] > 0 and lat["device"] == "cpu"
    assert r["size_bytes"] > 0
    assert r["energy"]["mode"] == "estimated" and r["energy"]["joules"] >= 0
