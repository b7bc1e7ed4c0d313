"""WinoGrande (dev, xl): lm-eval's partial scoring: the two contexts (option filled in) are compared
by the likelihood of the same continuation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenai.services.evaluation.benchmarks.base import Benchmark, Doc, HubSource, mean_metrics, read_jsonl, require


def _from_local(doc: Doc, where: str) -> Doc:
    contexts = require(doc, "context_options", where)
    return {
        "contexts": list(contexts),
        "continuation": str(require(doc, "continuation", where)).strip(),
        "gold": int(require(doc, "gold", where)),
    }


def _from_hub(row: Doc) -> Doc:
    cut = row["sentence"].index("_")
    return {
        "contexts": [row["sentence"][:cut] + row["option1"], row["sentence"][:cut] + row["option2"]],
        "continuation": row["sentence"][cut + 1 :].strip(),
        "gold": int(row["answer"]) - 1,
    }


def _load(data_dir: Path) -> list[Doc]:
    path = data_dir / "winogrande" / "winogrande_dev.jsonl"
    return [_from_local(d, f"{path}, line {n}") for n, d in enumerate(read_jsonl(path), 1)]


def _gold(doc: Doc) -> int:
    return int(doc["gold"])


def _contexts(doc: Doc) -> list[str]:
    return list(doc["contexts"])


def _continuation(doc: Doc) -> str:
    return str(doc["continuation"])


def _config() -> dict[str, Any]:
    # doc_to_text returning the gold index and doc_to_choice the contexts is lm-eval's "multiple input" form
    return {
        "output_type": "multiple_choice",
        "doc_to_text": _gold,
        "doc_to_choice": _contexts,
        "doc_to_target": _continuation,
        "metric_list": mean_metrics("acc"),
        "metadata": {"version": 1.0},
    }


BENCHMARKS = [
    Benchmark(
        "winogrande", "winogrande", "acc", _config, _load,
        HubSource("allenai/winogrande", "winogrande_xl", "validation", _from_hub),
        description="WinoGrande, pronoun resolution",
    )
]  # fmt: skip
