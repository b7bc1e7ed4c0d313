"""Benchmarks as lm-eval task configs that read the files under the data dir.

Each entry names the file(s) under `<data_dir>/<folder>/` (format in that folder's SOURCE.md) and
an lm-eval task config; the same prompts as lm-eval's own tasks so scores are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class UnknownBenchmarkError(LookupError):
    pass


@dataclass(frozen=True)
class Benchmark:
    name: str
    folder: str
    test_file: str
    config: dict[str, Any]
    metric: str

    def data_file(self, data_dir: Path) -> Path:
        path = data_dir / self.folder / self.test_file
        if not path.is_file():
            raise FileNotFoundError(f"benchmark {self.name}: {path} not found (is the data dir right?)")
        return path

    def task_config(self, data_dir: Path) -> dict[str, Any]:
        return {
            "task": f"greenai_{self.name}",
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(self.data_file(data_dir))}},
            "test_split": "test",
            **self.config,
        }


_ARC = {
    "output_type": "multiple_choice",
    # The local files keep the original ARC schema: {question: {stem, choices: [{text, label}]}, answerKey}.
    "doc_to_text": "Question: {{question.stem}}\nAnswer:",
    "doc_to_choice": "{{question.choices | map(attribute='text') | list}}",
    "doc_to_target": "{{(question.choices | map(attribute='label') | list).index(answerKey)}}",
    "metric_list": [
        {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
    ],
    "metadata": {"version": 1.0},
}

BENCHMARKS: dict[str, Benchmark] = {
    "arc_easy": Benchmark("arc_easy", "arc", "ARC-Easy-Test.jsonl", _ARC, "acc"),
    "arc_challenge": Benchmark("arc_challenge", "arc", "ARC-Challenge-Test.jsonl", _ARC, "acc_norm"),
}


def benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise UnknownBenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}") from None
