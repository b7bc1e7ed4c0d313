"""WikiText-2 perplexity as an lm-eval task (lm-eval's `wikitext`: rolling log-likelihood over whole
articles, word perplexity). Lower is better, so it is a secondary benchmark, never a run's target."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from greenai.services.evaluation.benchmarks.base import Benchmark, Doc, HubSource
from greenai.shared.wikitext import wikitext_path

ARTICLE = re.compile(r"^ = [^=].* = $")  # a top-level heading starts an article; " = = x = = " does not


def articles(text: str) -> list[str]:
    pages: list[list[str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if ARTICLE.match(line) or not pages:
            pages.append([])
        pages[-1].append(line)
    return ["\n".join(p).strip("\n") + "\n" for p in pages if "".join(p).strip()]


def _load(data_dir: Path) -> list[Doc]:
    return [{"page": p} for p in articles(wikitext_path(data_dir).read_text(encoding="utf-8"))]


def _from_hub(row: Doc) -> Doc:
    return {"page": row["page"]}


def _target(doc: Doc) -> str:
    from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer

    return str(wikitext_detokenizer(doc))


def _results(doc: Doc, results: list[float]) -> dict[str, Any]:
    from lm_eval.tasks.wikitext.preprocess_wikitext import process_results

    return dict(process_results(doc, results))


def _config() -> dict[str, Any]:
    return {
        "output_type": "loglikelihood_rolling",
        "doc_to_text": "",
        "doc_to_target": _target,
        "process_results": _results,
        "metric_list": [
            {"metric": "word_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
            {"metric": "byte_perplexity", "aggregation": "weighted_perplexity", "higher_is_better": False},
            {"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False},
        ],
        "metadata": {"version": 1.0},
    }


BENCHMARKS = [
    Benchmark(
        "wikitext2", "wikitext", "word_perplexity", _config, _load,
        HubSource("EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", "test", _from_hub),
        higher_is_better=False, bounded=False,
        description="WikiText-2 test, word perplexity over whole articles",
    )
]  # fmt: skip
