"""Builders for real events, so projection and planner tests read like the log they fold."""

from __future__ import annotations

import hashlib
from typing import Any

from greenai.events import Envelope, new_event
from greenai.events.artifacts import Artifact, ArtifactFile
from greenai.events.capabilities import AgentAnnounced, Hardware, MethodOffer, Preset, agents_experiment
from greenai.events.experiment import EpisodeDecided, ModelSpec, RunRequested, SpecInferred, Step
from greenai.events.jobs import STEP_REQUESTS, ArtifactRef, EvaluateRequested, JobFailed
from greenai.events.results import (
    Energy,
    EvaluateCompleted,
    Latency,
    LoraCompleted,
    ModelStaged,
    PruneCompleted,
    QuantizeCompleted,
)
from greenai.projections.capabilities import Offers

SPEC = ModelSpec(
    model="m", source="local", location="m", architecture="LlamaForCausalLM", family="llama",
    num_parameters=1000, num_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=100, context_length=512, dtype="float32", tied_embeddings=True, size_bytes=4000,
)  # fmt: skip


def agent_offers() -> Offers:
    """The real catalogue: what the quantization, pruning and LoRA agents announce (their own entries)."""
    from greenai.services.lora.catalogue import offers as lora_offers
    from greenai.services.pruning.catalogue import offers as prune_offers
    from greenai.services.quantization.methods.auto import METHODS

    return Offers(
        tuple(
            sorted(
                [*(m.catalogue_entry() for m in METHODS.values()), *prune_offers(3.0), *lora_offers()],
                key=lambda m: (m.kind, m.name),
            )
        )
    )


def preset(rank: int, why: str, **params: Any) -> Preset:
    return Preset(params=params, rationale=why, rank=rank)


def announced(agent: str, kind: str, methods: list[MethodOffer], interval_s: float = 60.0) -> Envelope:
    hw = Hardware(host="h", device="cpu", cpus=2, memory_bytes=2**34)
    data = AgentAnnounced(
        agent=agent, instance=f"{agent}@h", kind=kind, methods=methods, hardware=hw, interval_s=interval_s
    )
    return new_event(agents_experiment(agent), data, producer=data.instance)


def artifact(name: str, size: int = 1000) -> Artifact:
    """A manifest of one file whose content hash is derived from `name`: distinct names, distinct artifacts."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return Artifact.from_files([ArtifactFile(path="model.safetensors", bytes=size, sha256=digest)], "b")


def run(exp: str = "e", episodes: int = 2, **more: Any) -> Envelope:
    return new_event(
        exp, RunRequested(model="m", dataset="arc_easy", episodes=episodes, limit=5, **more), producer="t", key="run"
    )


def spec(exp: str = "e") -> Envelope:
    return new_event(exp, SpecInferred(spec=SPEC), producer="t")


def staged(exp: str = "e") -> Envelope:
    """The base model in the object store (the coordinator appends it after `spec.inferred`)."""
    return new_event(exp, ModelStaged(model="m", artifact=artifact("base"), wall_s=1.0), producer="t", key="staged")


def decided(exp: str, n: int, method: str = "autoround", params: dict[str, Any] | None = None) -> Envelope:
    step = Step(kind="quantize", method=method, params={"bits": 4} if params is None else params)
    return new_event(
        exp, EpisodeDecided(episode=n, action="compress", steps=[step], policy="grid", rationale="r"), producer="t"
    )


def pipeline(exp: str, n: int, steps: list[Step]) -> Envelope:
    return new_event(
        exp, EpisodeDecided(episode=n, action="compress", steps=steps, policy="grid", rationale="r"), producer="t"
    )


def step_requested(exp: str, n: int, step: int = 0, kind: str = "quantize") -> Envelope:
    data = STEP_REQUESTS[kind](
        job_id=f"{exp}-ep{n}-s{step}-{kind}",
        episode=n,
        step=step,
        source=ArtifactRef(kind="base", model="m"),
        method="x",
    )
    return new_event(exp, data, producer="t")


def step_completed(exp: str, n: int, step: int = 0, kind: str = "quantize", size: int = 1000) -> Envelope:
    cls = {"quantize": QuantizeCompleted, "prune": PruneCompleted, "lora": LoraCompleted}[kind]
    return new_event(
        exp,
        cls(
            job_id=f"{exp}-ep{n}-s{step}-{kind}", episode=n, step=step, method="autoround", params={"bits": 4},
            artifact=artifact(f"{n}/{step}", size),
            bits_per_weight=4.5, wall_s=1.0, peak_rss_mb=10.0,
        ),
        producer="t",
    )  # fmt: skip


def quantize_requested(exp: str, n: int) -> Envelope:
    return step_requested(exp, n)


def quantized(exp: str, n: int, size: int = 1000) -> Envelope:
    return step_completed(exp, n, size=size)


def evaluate_requested(exp: str, n: int) -> Envelope:
    return new_event(
        exp,
        EvaluateRequested(
            job_id=f"{exp}-ep{n}-evaluate", episode=n, target=ArtifactRef(kind="base", model="m"), task="arc_easy"
        ),
        producer="t",
    )


def evaluated(
    exp: str, n: int, acc: float, ms: float, mem: float, size: int, joules: float = 1.0, iqr: float | None = None
) -> Envelope:
    """An evaluation; `iqr`: the decode runs' spread (9 repetitions), None: not measured (events before v2)."""
    return new_event(
        exp,
        EvaluateCompleted(
            job_id=f"{exp}-ep{n}-evaluate", episode=n, task="arc_easy", metric="acc",
            accuracy=acc, accuracy_stderr=None,
            ci_low=max(0.0, acc - 0.1), ci_high=min(1.0, acc + 0.1), n=10, limit=10,
            latency=Latency(
                prefill_ms_per_token=1.0, decode_ms_per_token=ms, decode_tokens_per_s=1000 / ms, device="cpu",
                repetitions=None if iqr is None else 9, decode_ms_iqr=iqr,
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
