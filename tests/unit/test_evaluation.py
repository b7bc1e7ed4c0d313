from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenai.services.evaluation.job import evaluate_folder, wilson_interval
from greenai.services.evaluation.tasks import UnknownBenchmarkError, benchmark


def test_wilson_interval_matches_hand_computation() -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.15 < high < 0.17


def test_arc_config_reads_the_local_file_and_maps_answer_labels(data_dir: Path) -> None:
    from jinja2 import Environment

    config = benchmark("arc_easy").task_config(data_dir)
    path = Path(config["dataset_kwargs"]["data_files"]["test"])
    assert path.is_file()
    doc = json.loads(path.read_text().splitlines()[0])
    env = Environment()
    choices = env.from_string(config["doc_to_choice"]).render(**doc)
    target = int(env.from_string(config["doc_to_target"]).render(**doc))
    labels = [c["label"] for c in doc["question"]["choices"]]
    assert labels[target] == doc["answerKey"]
    assert doc["question"]["choices"][0]["text"] in choices
    assert env.from_string(config["doc_to_text"]).render(**doc).startswith("Question: ")


def test_unknown_benchmark_and_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(UnknownBenchmarkError, match="arc_easy"):
        benchmark("imaginary")
    with pytest.raises(FileNotFoundError, match=r"ARC-Easy-Test\.jsonl"):
        benchmark("arc_easy").task_config(tmp_path)


def test_evaluating_a_tiny_model_gives_every_metric(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    r = evaluate_folder(str(tiny_model_dir), "arc_easy", str(data_dir), 4, 0, str(tmp_path))
    assert r["n"] == 4
    assert 0.0 <= r["ci_low"] <= r["accuracy"] <= r["ci_high"] <= 1.0
    assert r["accuracy"] * 4 == round(r["accuracy"] * 4)  # a fraction of 4 items
    lat = r["latency"]
    assert lat["prefill_ms_per_token"] > 0 and lat["decode_ms_per_token"] > 0 and lat["device"] == "cpu"
    assert r["size_bytes"] > 0
    assert r["energy"]["mode"] == "estimated" and r["energy"]["joules"] >= 0
