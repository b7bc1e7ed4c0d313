"""HumanEval pass@1: greedy completion of each function, then the problem's own tests run in the
bubblewrap sandbox (never in this process). Code that loops, exhausts memory, forks, or reaches for
the network, the host's files or its secrets is contained and scores 0. Without working isolation the
benchmark is refused (`SandboxUnavailable`, reason "unsupported") before any generation starts."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from greenai.services.evaluation.benchmarks.base import Benchmark, Doc, HubSource, mean_metrics, read_jsonl, require
from greenai.services.evaluation.sandbox import SandboxLimits, check_isolation, run_untrusted

KEYS = ("task_id", "prompt", "entry_point", "test")
STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]  # the stop sequences of the HumanEval paper


def _normalise(doc: Doc, where: str = "row") -> Doc:
    return {k: require(doc, k, where) for k in KEYS}


def _load(data_dir: Path) -> list[Doc]:
    path = data_dir / "humaneval" / "HumanEval.jsonl.gz"
    return [_normalise(d, f"{path}, line {n}") for n, d in enumerate(read_jsonl(path, gzip.open), 1)]


def program(doc: Doc, completion: str) -> str:
    return f"{doc['prompt']}{completion}\n\n{doc['test']}\n\ncheck({doc['entry_point']})\n"


def score(doc: Doc, completion: str, limits: SandboxLimits | None = None, bwrap: str | None = None) -> dict[str, float]:
    result = run_untrusted(program(doc, completion), limits, bwrap)
    return {"pass@1": 1.0 if result.passed else 0.0}


def _results(doc: Doc, results: list[str]) -> dict[str, float]:
    return score(doc, results[0])


def _config() -> dict[str, Any]:
    check_isolation()  # refused here, in the job, before the model generates a single completion
    return {
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{entry_point}}",
        "target_delimiter": "",
        "generation_kwargs": {"do_sample": False, "until": STOP, "max_gen_toks": 256},
        "process_results": _results,
        "metric_list": mean_metrics("pass@1"),
        "metadata": {"version": 1.0},
    }


BENCHMARKS = [
    Benchmark(
        "humaneval", "humaneval", "pass@1", _config, _load,
        HubSource("openai/openai_humaneval", None, "test", _normalise),
        description="HumanEval, pass@1 (greedy), tests run in a sandbox",
        meta={"runs_model_code": True},
    )
]  # fmt: skip
