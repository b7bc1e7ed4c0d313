"""Prefill and decode latency per token: a warm-up, then timed runs until the spread is small.

Runs are repeated (at least `min_runs`) until the interquartile range of the per-run decode time is
under `target_spread` of its median, or `max_runs` is reached; the result says how many runs it took,
their spread, the threads torch used and how busy the whole host's CPU was meanwhile (a busy host shows
here, so a noisy figure is visibly noisy).
"""

from __future__ import annotations

import inspect
import statistics
import time
from dataclasses import dataclass
from typing import Any

PROMPT = (
    "The history of computing is a story of ever smaller machines doing ever more work. Early computers "
    "filled whole rooms and used vacuum tubes; transistors and then integrated circuits shrank them to "
    "desks and then to pockets. Each step made computation cheaper and opened new uses for it."
)


@dataclass(frozen=True)
class LatencyResult:
    prefill_ms_per_token: float
    decode_ms_per_token: float
    decode_tokens_per_s: float
    device: str
    repetitions: int = 0
    decode_ms_iqr: float = 0.0
    threads: int = 1
    runtime: str = "eager"
    cpu_load_pct: float | None = None


def iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _cache_of(out: Any) -> Any:
    return out["cache"] if "cache" in out else out["past_key_values"]


def measure_latency(
    model: Any,
    tokenizer: Any,
    *,
    prompt_tokens: int = 128,
    decode_tokens: int = 16,
    min_runs: int = 5,
    max_runs: int = 15,
    target_spread: float = 0.05,
) -> LatencyResult:
    import psutil
    import torch

    device = str(next(model.parameters()).device)
    # transformers renamed `past_key_values` to `cache` (5.2x); use whichever this model takes
    cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    ids = tokenizer(PROMPT * 8, return_tensors="pt").input_ids[:, :prompt_tokens].to(device)
    prefill: list[float] = []
    decode: list[float] = []
    psutil.cpu_percent(None)  # starts the host-wide CPU counter
    with torch.inference_mode():
        run = -1
        while True:
            run += 1  # run 0 warms up
            if run > min_runs and (run > max_runs or iqr(decode) <= target_spread * statistics.median(decode)):
                break
            _sync(device)
            t0 = time.perf_counter()
            out = model(input_ids=ids, use_cache=True)
            _sync(device)
            t1 = time.perf_counter()
            past = _cache_of(out)
            token = out.logits[:, -1:].argmax(-1)
            steps: list[float] = []
            for _ in range(decode_tokens):
                s0 = time.perf_counter()
                out = model(input_ids=token, use_cache=True, **{cache_kw: past})
                _sync(device)
                steps.append(time.perf_counter() - s0)
                past = _cache_of(out)
                token = out.logits[:, -1:].argmax(-1)
            if run:
                prefill.append((t1 - t0) / ids.shape[1])
                decode.append(statistics.median(steps))
    load = psutil.cpu_percent(None)
    p, d = statistics.median(prefill) * 1000, statistics.median(decode) * 1000
    return LatencyResult(
        round(p, 4), round(d, 4), round(1000.0 / d, 3), device.split(":")[0], repetitions=len(decode),
        decode_ms_iqr=round(iqr(decode) * 1000, 4), threads=torch.get_num_threads(), cpu_load_pct=round(load, 1),
    )  # fmt: skip
