"""Builders for real events, so projection and planner tests read like the log they fold."""

from __future__ import annotations

from typing import Any

from greenai.events import Envelope, new_event
from greenai.events.experiment import EpisodeDecided, ModelSpec, RunRequested, SpecInferred
from greenai.events.jobs import ArtifactRef, EvaluateRequested, JobFailed, QuantizeRequested
from greenai.events.results import Artifact, Energy, EvaluateCompleted, Latency, QuantizeCompleted

SPEC = ModelSpec(
    model="m", source="local", location="/m", architecture="LlamaForCausalLM", family="llama",
    num_parameters=1000, num_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=100, context_length=512, dtype="float32", tied_embeddings=True, size_bytes=4000,
)  # fmt: skip


def run(exp: str = "e", episodes: int = 2) -> Envelope:
    return new_event(
        exp, RunRequested(model="m", dataset="arc_easy", episodes=episodes, limit=5), producer="t", key="run"
    )


def spec(exp: str = "e") -> Envelope:
    return new_event(exp, SpecInferred(spec=SPEC), producer="t")


def decided(exp: str, n: int, method: str = "autoround", params: dict[str, Any] | None = None) -> Envelope:
    return new_event(
        exp,
        EpisodeDecided(
            episode=n,
            action="quantize",
            method=method,
            params={"bits": 4} if params is None else params,
            policy="grid",
            rationale="r",
        ),
        producer="t",
    )


def quantize_requested(exp: str, n: int) -> Envelope:
    return new_event(
        exp,
        QuantizeRequested(
            job_id=f"{exp}-ep{n}-quantize", episode=n, source=ArtifactRef(kind="base", model="m"), method="autoround"
        ),
        producer="t",
    )


def quantized(exp: str, n: int, size: int = 1000) -> Envelope:
    return new_event(
        exp,
        QuantizeCompleted(
            job_id=f"{exp}-ep{n}-quantize", episode=n, method="autoround", params={"bits": 4},
            artifact=Artifact(path=f"/a/{n}", bytes=size, sha256="h"),
            bits_per_weight=4.5, wall_s=1.0, peak_rss_mb=10.0,
        ),
        producer="t",
    )  # fmt: skip


def evaluate_requested(exp: str, n: int) -> Envelope:
    return new_event(
        exp,
        EvaluateRequested(
            job_id=f"{exp}-ep{n}-evaluate", episode=n, target=ArtifactRef(kind="base", model="m"), task="arc_easy"
        ),
        producer="t",
    )


def evaluated(exp: str, n: int, acc: float, ms: float, mem: float, size: int, joules: float = 1.0) -> Envelope:
    return new_event(
        exp,
        EvaluateCompleted(
            job_id=f"{exp}-ep{n}-evaluate", episode=n, task="arc_easy", metric="acc",
            accuracy=acc, accuracy_stderr=None,
            ci_low=max(0.0, acc - 0.1), ci_high=min(1.0, acc + 0.1), n=10, limit=10,
            latency=Latency(
                prefill_ms_per_token=1.0, decode_ms_per_token=ms, decode_tokens_per_s=1000 / ms, device="cpu"
            ),
            peak_rss_mb=mem, size_bytes=size, energy=Energy(joules=joules, mode="estimated", detail=""), wall_s=1.0,
        ),
        producer="t",
    )  # fmt: skip


def failed(exp: str, job_id: str, episode: int, final: bool = True) -> Envelope:
    return new_event(
        exp,
        JobFailed(
            job_id=job_id, kind="quantize", episode=episode, agent="quantization", attempt=1, final=final,
            reason="invalid", error_type="JobError", message="group size does not divide",
        ),
        producer="t",
    )  # fmt: skip
