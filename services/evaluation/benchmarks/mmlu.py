"""MMLU (57 subjects, test split): lm-eval's `mmlu` prompt, zero-shot, one task over all subjects."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from greenai.services.evaluation.benchmarks.base import Benchmark, BenchmarkDataError, Doc, HubSource, mean_metrics

HEADER = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]


def _load(data_dir: Path) -> list[Doc]:
    folder = data_dir / "mmlu" / "test"
    files = sorted(folder.glob("*_test.csv"))
    if not files:
        raise FileNotFoundError(f"{folder}/*_test.csv not found (is the data dir right?)")
    docs = []
    for path in files:
        subject = path.name.removesuffix("_test.csv")
        with path.open(encoding="utf-8", newline="") as fh:
            rows = csv.reader(fh)
            if next(rows, None) != HEADER:
                raise BenchmarkDataError(f"{path}, line 1: header is not {','.join(HEADER)}")
            for n, row in enumerate(rows, 2):
                if len(row) != 6 or row[5] not in {"0", "1", "2", "3"}:
                    raise BenchmarkDataError(f"{path}, line {n}: want 6 columns ending in an answer 0-3")
                docs.append({"question": row[0], "subject": subject, "choices": row[1:5], "answer": int(row[5])})
    return docs


def _from_hub(row: Doc) -> Doc:
    return {
        "question": row["question"],
        "subject": row["subject"],
        "choices": list(row["choices"]),
        "answer": row["answer"],
    }


def _config() -> dict[str, Any]:
    return {
        "output_type": "multiple_choice",
        "description": "The following are multiple choice questions (with answers) about "
        "{{subject.replace('_', ' ')}}.\n\n",
        "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
        "D. {{choices[3]}}\nAnswer:",
        "doc_to_choice": ["A", "B", "C", "D"],
        "doc_to_target": "{{answer}}",
        "metric_list": mean_metrics("acc"),
        "metadata": {"version": 1.0},
    }


BENCHMARKS = [
    Benchmark(
        "mmlu", "mmlu", "acc", _config, _load, HubSource("cais/mmlu", "all", "test", _from_hub),
        description="MMLU, 57 subjects, zero-shot",
    )
]  # fmt: skip
