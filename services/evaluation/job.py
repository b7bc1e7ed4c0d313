"""The body of an evaluation job; runs in a fresh child process so its peak memory is its own."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.services.evaluation.benchmarks.auto import benchmark
from greenai.services.evaluation.benchmarks.base import Benchmark, BenchmarkDataError, seeded_subset, write_docs
from greenai.services.evaluation.benchmarks.task_code import sandbox_templates
from greenai.services.evaluation.latency import measure_latency
from greenai.shared.energy import track_energy
from greenai.shared.jobs import JobError
from greenai.shared.model_io import folder_bytes, load_model, read_runtime


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


MAX_WINDOW = 2048  # tokens an lm-eval request may span (SmolLM2's context is 8k)
ROLLING = "loglikelihood_rolling"


@dataclass(frozen=True)
class PreparedTask:
    bench: Benchmark
    config: dict[str, Any] | str  # a config dict, or the name of a task lm-eval finds on its include path
    name: str
    n_docs: int | None


def prepare_task(
    name: str, data_dir: str | None, limit: int | None, seed: int, cache_dir: str, trust_code: bool = False
) -> PreparedTask:
    """The task config over the documents of this evaluation: all of them, or a seeded subset."""
    bench = benchmark(name, trust_code)
    if "lm_eval_task" in bench.meta:
        task = str(bench.meta["lm_eval_task"])
        return PreparedTask(bench, task, task, None)
    docs = bench.documents(Path(data_dir) if data_dir else None)
    subset = seeded_subset(docs, limit, seed)
    path = write_docs(subset, Path(cache_dir) / "benchmark-docs")
    config = bench.task_config(path)
    return PreparedTask(bench, config, str(config["task"]), len(subset))


def _score(out: dict[str, Any], task: PreparedTask) -> dict[str, Any]:
    bench = task.bench
    scores = out["results"][task.name]
    value = float(scores[f"{bench.metric},{bench.filter}"])
    stderr = scores.get(f"{bench.metric}_stderr,{bench.filter}")
    n = int(out["n-samples"][task.name]["effective"])
    score: dict[str, Any] = {
        "task": bench.name,
        "metric": bench.metric_label,
        "value": value,
        "higher_is_better": bench.higher_is_better,
        "n": n,
        "stderr": float(stderr) if isinstance(stderr, int | float) else None,
        "ci_low": None,
        "ci_high": None,
    }
    if bench.bounded:
        low, high = wilson_interval(value * n, n)
        score["ci_low"], score["ci_high"] = round(low, 6), round(high, 6)
    return score


def run_tasks(lm: Any, tasks: list[PreparedTask], seed: int, limit: int | None) -> list[dict[str, Any]]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    sandbox_templates()  # a task's Jinja templates cannot reach Python internals
    include = sorted({str(t.bench.meta["include_path"]) for t in tasks if "include_path" in t.bench.meta})
    # lm-eval's own task index (thousands of YAML files) costs ~15 s of CPU per evaluation; only a user's
    # lm-eval task folder may refer to lm-eval's built-in tasks, so only then is it built
    manager = TaskManager(include_path=include or None, include_defaults=bool(include))
    # our own tasks carry their subset already; an lm-eval folder task takes lm-eval's first-`limit` items
    folder_limit = limit if any("lm_eval_task" in t.bench.meta for t in tasks) else None
    out = simple_evaluate(
        model=lm,
        tasks=[t.config for t in tasks],
        limit=folder_limit,
        task_manager=manager,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
        log_samples=False,
        confirm_run_unsafe_code=False,
    )
    assert out is not None
    return [_score(out, t) for t in tasks]


def evaluate_folder(
    folder: str,
    task: str,
    data_dir: str | None,
    limit: int | None,
    seed: int,
    cache_dir: str,
    secondary: tuple[str, ...] = (),
    max_gen_toks: int | None = None,
    trust_code: bool = False,
    measure_speed: bool = True,
) -> dict[str, Any]:
    """Scores (and, unless `measure_speed` is off, latency: the agent measures it apart, holding the host)."""
    os.environ.setdefault("HF_DATASETS_CACHE", str(Path(cache_dir) / "datasets"))
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    size = folder_bytes(folder)  # before anything else: what is measured is the artifact as it was handed over
    if size == 0:
        raise FileNotFoundError(f"artifact {folder} is empty or gone")
    prepared = [prepare_task(name, data_dir, limit, seed, cache_dir, trust_code) for name in (task, *secondary)]
    if not prepared[0].bench.bounded:
        raise BenchmarkDataError(
            f"{task} scores {prepared[0].bench.metric} (lower is better), not an accuracy: "
            "use it as a secondary benchmark, with another target"
        )
    if max_gen_toks is not None:  # a cap for quick runs; the benchmark's own setting otherwise
        for p in prepared:
            if isinstance(p.config, dict) and "generation_kwargs" in p.config:
                p.config["generation_kwargs"] = {**p.config["generation_kwargs"], "max_gen_toks": max_gen_toks}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with track_energy() as energy:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = load_model(folder, device_map=device)
        model.eval()
        # windows of at most 2048 tokens: lm-eval takes log-softmax over the whole vocabulary for every
        # position, so a full 8k-token window in a batch of 8 needs ~13 GB; rolling (perplexity) tasks
        # go one window at a time for the same reason
        rolling = [
            isinstance(p.config, dict) and p.config.get("output_type") == "loglikelihood_rolling" for p in prepared
        ]
        scores: dict[int, dict[str, Any]] = {}
        for is_rolling, batch in ((False, 8), (True, 1)):
            group = [i for i, r in enumerate(rolling) if r == is_rolling]
            if group:
                lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch, max_length=MAX_WINDOW)
                done = run_tasks(lm, [prepared[i] for i in group], seed, limit)
                scores |= dict(zip(group, done, strict=True))
        ordered = [scores[i] for i in range(len(prepared))]
        latency = measure_latency(model, tokenizer, runtime=read_runtime(folder)) if measure_speed else None
    target = ordered[0]
    return {
        "metric": target["metric"],
        "accuracy": target["value"],
        "accuracy_stderr": target["stderr"],
        "n": target["n"],
        "ci_low": target["ci_low"],
        "ci_high": target["ci_high"],
        "secondary": ordered[1:],
        "latency": latency.__dict__ if latency is not None else None,
        "size_bytes": size,
        "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None,
        "energy": energy.as_event(),
    }


def latency_of_folder(folder: str) -> dict[str, Any]:
    """Latency alone, in a process of its own: the agent runs it while it holds the host's lease."""
    import torch
    from transformers import AutoTokenizer

    try:  # how the artifact is meant to run (torchao int8: compiled); it came over the bus, so checked
        runtime = read_runtime(folder)
    except ValueError as exc:
        raise JobError(f"artifact's runtime record refused: {exc}", "invalid") from None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = load_model(folder, device_map=device)
    model.eval()
    with track_energy() as energy:  # the timed runs alone: their mean power x ms/token is J per token
        result = measure_latency(model, tokenizer, runtime=runtime)
    return {**result.__dict__, "energy": energy.as_event()}
