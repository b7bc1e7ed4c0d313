"""Prefill and decode latency per token: a warm-up, then timed runs until the spread is small.

Runs are repeated (at least `min_runs`) until the interquartile range of the per-run decode time is
under `target_spread` of its median, or `max_runs` is reached; the result says how many runs it took,
their spread, the threads torch used and how busy the whole host's CPU was meanwhile (a busy host shows
here, so a noisy figure is visibly noisy).

`runtime="compiled"` runs the model through `torch.compile` (Inductor): its warm-up run compiles the
prefill and decode graphs, and that time is reported apart (`compile_s`), never inside ms/token. A
compiler that fails on this machine is a job error (`unsupported`) naming the failure, not an eager
figure passed off as a compiled one.
"""

from __future__ import annotations

import inspect
import statistics
import time
from dataclasses import dataclass
from typing import Any

from greenai.shared.jobs import JobError
from greenai.shared.model_io import Runtime

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
    compile_s: float | None = None  # compiled runtime: the warm-up's extra seconds (compilation)


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
    runtime: Runtime = "eager",
) -> LatencyResult:
    import psutil
    import torch

    device = str(next(model.parameters()).device)
    step = torch.compile(model) if runtime == "compiled" else model
    # transformers renamed `past_key_values` to `cache` (5.2x); use whichever this model takes
    cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    ids = tokenizer(PROMPT * 8, return_tensors="pt").input_ids[:, :prompt_tokens].to(device)
    prefill: list[float] = []
    decode: list[float] = []
    runs: list[float] = []  # wall seconds of each timed run, to tell the warm-up's compile time apart
    warmup = 0.0
    psutil.cpu_percent(None)  # starts the host-wide CPU counter
    with torch.inference_mode():
        run = -1
        while True:
            run += 1  # run 0 warms up
            if run > min_runs and (run > max_runs or iqr(decode) <= target_spread * statistics.median(decode)):
                break
            _sync(device)
            t0 = time.perf_counter()
            try:
                t1, steps = _one_run(step, ids, decode_tokens, cache_kw, device)
            except Exception as exc:
                if runtime == "compiled" and not run:
                    raise _compile_failed(exc) from exc
                raise
            if run:
                prefill.append((t1 - t0) / ids.shape[1])
                decode.append(statistics.median(steps))
                runs.append(t1 - t0 + sum(steps))
            else:
                warmup = t1 - t0 + sum(steps)
    load = psutil.cpu_percent(None)
    p, d = statistics.median(prefill) * 1000, statistics.median(decode) * 1000
    compile_s = round(max(0.0, warmup - statistics.median(runs)), 3) if runtime == "compiled" else None
    return LatencyResult(
        round(p, 4), round(d, 4), round(1000.0 / d, 3), device.split(":")[0], repetitions=len(decode),
        decode_ms_iqr=round(iqr(decode) * 1000, 4), threads=torch.get_num_threads(), runtime=runtime,
        cpu_load_pct=round(load, 1), compile_s=compile_s,
    )  # fmt: skip


def _one_run(step: Any, ids: Any, decode_tokens: int, cache_kw: str, device: str) -> tuple[float, list[float]]:
    """A prefill of `ids`, then `decode_tokens` greedy steps on the KV cache: when the prefill ended
    (perf_counter) and each step's seconds."""
    out = step(input_ids=ids, use_cache=True)
    _sync(device)
    t1 = time.perf_counter()
    past = _cache_of(out)
    token = out.logits[:, -1:].argmax(-1)
    steps: list[float] = []
    for _ in range(decode_tokens):
        s0 = time.perf_counter()
        out = step(input_ids=token, use_cache=True, **{cache_kw: past})
        _sync(device)
        steps.append(time.perf_counter() - s0)
        past = _cache_of(out)
        token = out.logits[:, -1:].argmax(-1)
    return t1, steps


def _compile_failed(exc: Exception) -> JobError:
    detail = " ".join(str(exc).split())[:400]
    return JobError(
        f"torch.compile failed on this machine ({type(exc).__name__}: {detail}); the artifact asks for the "
        "compiled runtime: quantize it with runtime='eager' to measure it eager",
        "unsupported",
    )
