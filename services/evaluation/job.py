"""The body of an evaluation job; runs in a fresh child process so its peak memory is its own."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from greenai.services.evaluation.energy import track_energy
from greenai.services.evaluation.latency import measure_latency
from greenai.services.evaluation.tasks import benchmark
from greenai.shared.model_io import folder_bytes


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate_folder(
    folder: str, task: str, data_dir: str, limit: int | None, seed: int, cache_dir: str
) -> dict[str, Any]:
    os.environ.setdefault("HF_DATASETS_CACHE", str(Path(cache_dir) / "datasets"))
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bench = benchmark(task)
    task_config = bench.task_config(Path(data_dir))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with track_energy() as energy:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, device_map=device)
        model.eval()
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8)
        out = simple_evaluate(
            model=lm,
            tasks=[task_config],
            limit=limit,
            task_manager=TaskManager(),
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            log_samples=False,
        )
        latency = measure_latency(model, tokenizer)
    assert out is not None
    name = task_config["task"]
    scores = out["results"][name]
    accuracy = float(scores[f"{bench.metric},none"])
    stderr = scores.get(f"{bench.metric}_stderr,none")
    n = int(out["n-samples"][name]["effective"])
    low, high = wilson_interval(accuracy * n, n)
    return {
        "metric": bench.metric,
        "accuracy": accuracy,
        "accuracy_stderr": float(stderr) if isinstance(stderr, int | float) else None,
        "n": n,
        "ci_low": round(low, 6),
        "ci_high": round(high, 6),
        "latency": latency.__dict__,
        "size_bytes": folder_bytes(folder),
        "energy": {"joules": round(energy.joules, 3), "mode": energy.mode, "detail": energy.detail},
    }
