"""HellaSwag (validation): lm-eval's `hellaswag` scoring (acc_norm over the four endings).

The local file is the llama.cpp text extraction (6 lines an item: "<activity>: <context>", the gold
index, four endings); its context is the raw one, so numbers may differ slightly from lm-eval's,
which capitalises `ctx_b` (see the data's SOURCE.md).
"""

from __future__ import annotations

import bz2
import re
from pathlib import Path
from typing import Any

from greenai.services.evaluation.benchmarks.base import Benchmark, BenchmarkDataError, Doc, HubSource, mean_metrics


def _clean(text: str) -> str:
    # lm-eval's hellaswag preprocessing: drop WikiHow's bracket tags and double spaces
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def _load(data_dir: Path) -> list[Doc]:
    path = data_dir / "hellaswag" / "hellaswag_val_full.txt.bz2"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (is the data dir right?)")
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if len(lines) % 6:
        raise BenchmarkDataError(f"{path}: {len(lines)} lines, not a multiple of 6")
    docs = []
    for i in range(0, len(lines), 6):
        try:
            gold = int(lines[i + 1])
        except ValueError:
            raise BenchmarkDataError(f"{path}, line {i + 2}: gold label {lines[i + 1]!r} is not 0-3") from None
        docs.append({"query": _clean(lines[i]), "choices": [_clean(e) for e in lines[i + 2 : i + 6]], "gold": gold})
    return docs


def _from_hub(row: Doc) -> Doc:
    ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    return {
        "query": _clean(row["activity_label"] + ": " + ctx),
        "choices": [_clean(e) for e in row["endings"]],
        "gold": int(row["label"]),
    }


def _config() -> dict[str, Any]:
    return {
        "output_type": "multiple_choice",
        "doc_to_text": "{{query}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{gold}}",
        "metric_list": mean_metrics("acc", "acc_norm"),
        "metadata": {"version": 1.0},
    }


BENCHMARKS = [
    Benchmark(
        "hellaswag", "hellaswag", "acc_norm", _config, _load,
        HubSource("Rowan/hellaswag", None, "validation", _from_hub),
        description="HellaSwag, commonsense sentence endings",
    )
]  # fmt: skip
