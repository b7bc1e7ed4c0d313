"""ARC-Easy and ARC-Challenge: lm-eval's `arc_easy` / `arc_challenge` prompt, zero-shot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenai.services.evaluation.benchmarks.base import Benchmark, Doc, HubSource, mean_metrics, read_jsonl, require

FILES = {"arc_easy": "ARC-Easy-Test.jsonl", "arc_challenge": "ARC-Challenge-Test.jsonl"}


def _from_local(doc: Doc, where: str) -> Doc:
    # The local files keep the original ARC schema: {question: {stem, choices: [{text, label}]}, answerKey}.
    q = require(doc, "question", where)
    choices = require(q, "choices", where + " question")
    return {
        "id": doc.get("id"),
        "question": require(q, "stem", where + " question"),
        "choices": {"text": [c["text"] for c in choices], "label": [c["label"] for c in choices]},
        "answerKey": require(doc, "answerKey", where),
    }


def _from_hub(row: Doc) -> Doc:
    return {
        "id": row["id"],
        "question": row["question"],
        "choices": dict(row["choices"]),
        "answerKey": row["answerKey"],
    }


def _loader(name: str) -> Any:
    def load(data_dir: Path) -> list[Doc]:
        path = data_dir / "arc" / FILES[name]
        return [_from_local(d, f"{path}, line {n}") for n, d in enumerate(read_jsonl(path), 1)]

    return load


def _config() -> dict[str, Any]:
    return {
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_choice": "{{choices.text}}",
        "doc_to_target": "{{choices.label.index(answerKey)}}",
        "metric_list": mean_metrics("acc", "acc_norm"),
        "metadata": {"version": 1.0},
    }


BENCHMARKS = [
    Benchmark(
        "arc_easy", "arc", "acc", _config, _loader("arc_easy"),
        HubSource("allenai/ai2_arc", "ARC-Easy", "test", _from_hub), description="ARC-Easy, 4-way science questions",
    ),
    Benchmark(
        "arc_challenge", "arc", "acc_norm", _config, _loader("arc_challenge"),
        HubSource("allenai/ai2_arc", "ARC-Challenge", "test", _from_hub),
        description="ARC-Challenge, the hard science questions",
    ),
]  # fmt: skip
