"""Maps a `--dataset` name to its benchmark: a built-in one, a BBH subtask (`bbh:<task>`), or a
user's JSONL file / lm-eval task folder."""

from __future__ import annotations

from greenai.services.evaluation.benchmarks import (
    arc,
    bbh,
    commonsenseqa,
    gsm8k,
    hellaswag,
    humaneval,
    mmlu,
    truthfulqa,
    wikitext,
    winogrande,
)
from greenai.services.evaluation.benchmarks.base import Benchmark, UnknownBenchmarkError
from greenai.services.evaluation.benchmarks.user import is_user_benchmark, user_benchmark

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for module in (arc, gsm8k, commonsenseqa, truthfulqa, humaneval, bbh, mmlu, hellaswag, winogrande, wikitext)
    for b in module.BENCHMARKS
}


def benchmark(name: str, trust_code: bool = False) -> Benchmark:
    """`trust_code`: an lm-eval task folder may run its own Python (the user said so at the CLI)."""
    if name in BENCHMARKS:
        return BENCHMARKS[name]
    if name.startswith("bbh:"):
        return bbh.benchmark(name.removeprefix("bbh:"))
    if is_user_benchmark(name):
        return user_benchmark(name, trust_code)
    known = ", ".join(sorted(BENCHMARKS))
    raise UnknownBenchmarkError(
        f"unknown benchmark {name!r}; known: {known}, bbh:<task>, or a .jsonl file / lm-eval task folder of your own"
    )
