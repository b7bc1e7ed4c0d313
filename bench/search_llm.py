"""The LLM row of bench/search_efficiency.py: where its answers come from, and what they cost.

`--llm local` starts llama-cpp-python's server on a GGUF (SmolLM2-135M by default, `--llm-gguf` for a
larger one) on 127.0.0.1, which constrains every answer to the decision's JSON schema; `--llm URL`
takes any OpenAI-compatible endpoint (key from OPENAI_API_KEY); `--llm-recorded FILE` serves the
answers a previous run wrote (`--llm-record`), by conversation hash, with no server at all: the
landscape is deterministic, so the same prompts come back and the run repeats bit for bit.

Printed beside the search table: calls, invalid answers, retries, fallbacks (the fallback policy
decided), choices outside the recorded landscape (counted as failed evaluations), and seconds and
tokens per decision (from the recording when replaying).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.table import Table

from greenai.events import EventData, decode, new_event
from greenai.events.experiment import LLMConsulted, PolicyFellBack
from greenai.services.coordinator.policies.llm_calls import FORMAT_REFUSED
from greenai.shared.config import Settings
from greenai.shared.llama_server import free_port, gguf_path, start, wait_ready

FALLBACK = "tpe"


@contextmanager
def llm_settings(url: str | None, gguf: str, recorded: Path | None, model: str | None) -> Iterator[Settings]:
    common = {"llm_max_tokens": 320, "llm_max_attempts": 2, "llm_fallback_policy": FALLBACK}
    if recorded is not None:
        yield Settings(llm_recorded=recorded, llm_model=model or gguf, **common)  # type: ignore[arg-type]
        return
    if url != "local":
        yield Settings(llm_base_url=url, llm_model=model or "gpt-4o-mini", **common)  # type: ignore[arg-type]
        return
    port = free_port()
    proc = start(gguf_path(gguf), port, threads=1)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        wait_ready(proc, base)
        yield Settings(llm_base_url=base, llm_model=model or gguf, **common)  # type: ignore[arg-type]
    finally:
        proc.terminate()
        proc.wait(30)


def write_recording(path: Path, notes: list[EventData]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    calls = [n for n in notes if isinstance(n, LLMConsulted)]
    path.write_bytes(b"".join(new_event("bench-llm", n, producer="bench").encode() + b"\n" for n in calls))


def recorded_latency(path: Path) -> float:
    lines = [decode(line).data for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sum(d.latency_s for d in lines if isinstance(d, LLMConsulted))


def stats_table(notes: list[EventData], decisions: int, off_landscape: int, recorded: Path | None) -> Table:
    calls = [n for n in notes if isinstance(n, LLMConsulted) and not (n.error or "").startswith(FORMAT_REFUSED)]
    fell = [n for n in notes if isinstance(n, PolicyFellBack)]
    seconds = recorded_latency(recorded) if recorded is not None else sum(c.latency_s for c in calls)
    tokens = [(c.prompt_tokens or 0) + (c.completion_tokens or 0) for c in calls]
    table = Table(title="the llm policy's answers" + (f" (replayed from {recorded.name})" if recorded else ""))
    for col in ("decisions", "calls", "invalid", "retries", f"fallbacks (to {FALLBACK})", "off landscape",
                "s/decision", "tokens/decision", "prompt tokens (median)"):  # fmt: skip
        table.add_column(col, justify="right")
    per = max(1, decisions)
    table.add_row(
        str(decisions), str(len(calls)), str(sum(not c.valid for c in calls)), str(sum(c.attempt > 1 for c in calls)),
        str(len(fell)), str(off_landscape), f"{seconds / per:.1f}", f"{sum(tokens) / per:.0f}",
        f"{statistics.median([c.prompt_tokens or 0 for c in calls]):.0f}" if calls else "-",
    )  # fmt: skip
    return table


def invalid_reasons(notes: list[EventData], top: int = 5) -> list[str]:
    """The most frequent reasons answers were refused (their first words), to print under the table."""
    counts: dict[str, int] = {}
    for n in notes:
        if isinstance(n, LLMConsulted) and not n.valid and not (n.error or "").startswith(FORMAT_REFUSED):
            key = (n.error or "")[:90]
            counts[key] = counts.get(key, 0) + 1
    return [f"{c} x {k}" for k, c in sorted(counts.items(), key=lambda kv: -kv[1])[:top]]
