"""Prefill and decode latency per token: a warm-up, then the median of several timed runs."""

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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _cache_of(out: Any) -> Any:
    return out["cache"] if "cache" in out else out["past_key_values"]


def measure_latency(
    model: Any, tokenizer: Any, *, prompt_tokens: int = 128, decode_tokens: int = 16, runs: int = 3
) -> LatencyResult:
    import torch

    device = str(next(model.parameters()).device)
    # transformers renamed `past_key_values` to `cache` (5.2x); use whichever this model takes
    cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    ids = tokenizer(PROMPT * 8, return_tensors="pt").input_ids[:, :prompt_tokens].to(device)
    prefill: list[float] = []
    decode: list[float] = []
    with torch.inference_mode():
        for run in range(runs + 1):  # run 0 warms up
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
    p, d = statistics.median(prefill) * 1000, statistics.median(decode) * 1000
    return LatencyResult(round(p, 4), round(d, 4), round(1000.0 / d, 3), device.split(":")[0])
