"""CommonsenseQA (validation split, as lm-eval scores it): lm-eval's `commonsense_qa` prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenai.services.evaluation.benchmarks.base import Benchmark, Doc, HubSource, mean_metrics, read_jsonl, require

KEYS = ("question", "choices", "answerKey")


def _normalise(doc: Doc, where: str = "row") -> Doc:
    return {k: require(doc, k, where) for k in KEYS} | {"choices": dict(doc["choices"])}


def _load(data_dir: Path) -> list[Doc]:
    path = data_dir / "commonsenseqa" / "dev_rand_split.jsonl"
    return [_normalise(d, f"{path}, line {n}") for n, d in enumerate(read_jsonl(path), 1)]


def _config() -> dict[str, Any]:
    return {
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{ question.strip() }}\nA. {{choices['text'][0]}}\nB. {{choices['text'][1]}}\n"
        "C. {{choices['text'][2]}}\nD. {{choices['text'][3]}}\nE. {{choices['text'][4]}}\nAnswer:",
        "doc_to_target": "{{ ['A', 'B', 'C', 'D', 'E'].index(answerKey) }}",
        "doc_to_choice": ["A", "B", "C", "D", "E"],
        "metric_list": mean_metrics("acc"),
        "metadata": {"version": 1.0},
    }


BENCHMARKS = [
    Benchmark(
        "commonsense_qa", "commonsense_qa", "acc", _config, _load,
        HubSource("tau/commonsense_qa", None, "validation", _normalise), description="CommonsenseQA, 5-way",
    )
]  # fmt: skip
