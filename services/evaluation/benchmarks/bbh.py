"""BIG-Bench Hard: the 27 tasks with their 3-shot chain-of-thought prompts (`bbh/cot-prompts/`),
scored like lm-eval's `bbh_cot_fewshot`: exact match on what follows "the answer is".

One task over all subtasks (`bbh`) or one subtask (`bbh:<name>`): each document carries its
subtask's prompt, so a seeded subset samples across subtasks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from greenai.services.evaluation.benchmarks.base import Benchmark, BenchmarkDataError, Doc, mean_metrics


def _prompt(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    # the files open with the BIG-bench canary and a "-----" line; the prompt is what follows
    _, sep, rest = text.partition("\n-----\n")
    return (rest if sep else text).strip()


def subtasks(data_dir: Path) -> list[str]:
    folder = data_dir / "bbh"
    names = sorted(p.stem for p in folder.glob("*.json"))
    if not names:
        raise FileNotFoundError(f"{folder}/*.json not found (is the data dir right?)")
    return names


def _loader(only: str | None) -> Any:
    def load(data_dir: Path) -> list[Doc]:
        docs = []
        for name in [only] if only else subtasks(data_dir):
            path = data_dir / "bbh" / f"{name}.json"
            prompt_path = data_dir / "bbh" / "cot-prompts" / f"{name}.txt"
            if not path.is_file() or not prompt_path.is_file():
                raise FileNotFoundError(f"{path} or {prompt_path} not found (is the data dir right?)")
            prompt = _prompt(prompt_path)
            examples = json.loads(path.read_text(encoding="utf-8")).get("examples")
            if not isinstance(examples, list):
                raise BenchmarkDataError(f"{path}: field 'examples' is missing")
            for n, ex in enumerate(examples, 1):
                if "input" not in ex or "target" not in ex:
                    raise BenchmarkDataError(f"{path}, example {n}: fields 'input' and 'target' are needed")
                docs.append({"subtask": name, "prompt": prompt, "input": ex["input"], "target": ex["target"]})
        return docs

    return load


def _config() -> dict[str, Any]:
    return {
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}\n\nQ: {{input}}\nA: Let's think step by step.\n",
        "doc_to_target": "{{target}}",
        "target_delimiter": "",
        "generation_kwargs": {"do_sample": False, "until": ["</s>", "Q:", "\n\n"], "max_gen_toks": 256},
        "filter_list": [{"name": "get-answer", "filter": [
            {"function": "regex", "regex_pattern": r"(?<=the answer is )(.*)(?=.)"},
            {"function": "take_first"},
        ]}],
        "metric_list": mean_metrics("exact_match"),
        "metadata": {"version": 1.0},
    }  # fmt: skip


def benchmark(subtask: str | None = None) -> Benchmark:
    name = f"bbh:{subtask}" if subtask else "bbh"
    return Benchmark(
        name, "bbh", "exact_match", _config, _loader(subtask), filter="get-answer",
        description="BIG-Bench Hard, 3-shot chain of thought" + (f", {subtask}" if subtask else ", 27 tasks"),
    )  # fmt: skip


BENCHMARKS = [benchmark()]
