"""Human-readable one-liners and tables for events and fronts."""

from __future__ import annotations

from rich.table import Table

from greenai.events import Envelope
from greenai.events.cancellation import ExperimentCancelled
from greenai.events.experiment import (
    DecisionProposed,
    DecisionReviewed,
    EpisodeDecided,
    ExperimentCompleted,
    ExperimentFailed,
    LLMConsulted,
    PolicyFellBack,
    RunRequested,
    SpecInferred,
)
from greenai.events.jobs import EvaluateRequested, EventRejected, JobFailed, JobStarted, StepRequested
from greenai.events.results import EvaluateCompleted, StepCompleted
from greenai.projections.pareto import ParetoFront


def describe(env: Envelope) -> str:
    d = env.data
    if isinstance(d, RunRequested):
        return f"run requested: {d.model} on {d.dataset}, {d.episodes} episode(s), policy {d.policy}, limit {d.limit}"
    if isinstance(d, SpecInferred):
        s = d.spec
        return (
            f"spec: {s.architecture} ({s.family}), {s.num_parameters:,} params, {s.num_layers} layers"
            if s.num_parameters
            else f"spec: {s.architecture}"
        )
    if isinstance(d, EpisodeDecided):
        if d.action == "end":
            return f"episode {d.episode}: {d.policy} chose to end — {d.rationale}"
        steps = " → ".join(f"{s.kind} {s.method} {s.params or ''}".strip() for s in d.steps)
        return f"episode {d.episode} decided by {d.policy}: {steps} — {d.rationale}"
    if isinstance(d, DecisionProposed):
        steps = " → ".join(f"{s.kind} {s.method} {s.params or ''}".strip() for s in d.steps) or "end"
        return f"episode {d.episode} proposal {d.proposal} by {d.policy}: {steps} — waiting for review"
    if isinstance(d, DecisionReviewed):
        return f"episode {d.episode} proposal {d.proposal}: {d.verdict} by {d.reviewer}"
    if isinstance(d, StepRequested):
        return f"{d.TYPE.split('.')[0]} requested: episode {d.episode} step {d.step + 1}, {d.method} {d.params}"
    if isinstance(d, StepCompleted):
        extra = ", ".join(f"{k} {v}" for k, v in sorted(d.metrics.items()))
        return (
            f"{d.TYPE.split('.')[0]} done: episode {d.episode} step {d.step + 1}, {d.artifact.bytes / 2**20:.1f} MiB, "
            f"{d.bits_per_weight} bits/weight, {d.wall_s:.1f} s, peak {d.peak_rss_mb:.0f} MiB"
            + (f", {d.energy.joules:.1f} J ({d.energy.mode})" if d.energy is not None else "")
            + (f"; {extra}" if extra else "")
        )
    if isinstance(d, EvaluateRequested):
        return f"evaluate requested: episode {d.episode} on {d.task} (limit {d.limit})"
    if isinstance(d, EvaluateCompleted):
        return (
            f"evaluated: episode {d.episode}, {d.metric} {d.accuracy:.3f} [{d.ci_low:.3f}, {d.ci_high:.3f}] n={d.n}, "
            f"decode {d.latency.decode_ms_per_token:.1f} ms/token, {d.size_bytes / 2**20:.1f} MiB, "
            f"{d.energy.joules:.1f} J ({d.energy.mode})"
        )
    if isinstance(d, JobStarted):
        return f"job started: {d.job_id} on {d.instance} (attempt {d.attempt})"
    if isinstance(d, JobFailed):
        return f"job failed{' for good' if d.final else ''}: {d.job_id} ({d.reason}) {d.error_type}: {d.message[:300]}"
    if isinstance(d, EventRejected):
        return f"rejected message on {d.subject} by {d.agent}: {d.reason[:300]}"
    if isinstance(d, ExperimentCompleted):
        return f"experiment completed: {d.reason}"
    if isinstance(d, ExperimentFailed):
        return f"experiment failed: {d.reason}"
    if isinstance(d, ExperimentCancelled):
        return f"experiment cancelled by {d.requested_by}" + (f": {d.reason[:300]}" if d.reason else "")
    if isinstance(d, LLMConsulted):
        verdict = "valid answer" if d.valid else f"no valid answer: {(d.error or '')[:200]}"
        return f"llm consulted: episode {d.episode} attempt {d.attempt}, {d.latency_s:.1f} s, {verdict}"
    if isinstance(d, PolicyFellBack):
        return f"episode {d.episode}: {d.from_policy} fell back to {d.to_policy}: {d.reason[:300]}"
    return env.type


def front_table(front: ParetoFront) -> Table:
    energy = "energy_j" in front.objectives  # an axis only where a counter measured it, or forced
    table = Table(
        title="Pareto front (accuracy up; latency, memory, size" + (", energy" if energy else "") + " down)",
        caption=None if energy else "energy is no axis: no hardware counter measured it (--energy-axis forces it)",
    )
    for col in (
        "episode",
        "method",
        "params",
        "accuracy [95% CI]",
        "ms/token (spread)",
        "peak MiB",
        "size MiB",
        "ratio",
        *(["energy J"] if energy else []),
    ):
        table.add_column(col)
    secondary = sorted({task for c in front.front for task in c.secondary})
    for task in secondary:
        table.add_column(task)
    on_front = {(c.experiment_id, c.episode) for c in front.front}
    # the uncompressed baseline is the reference every row is read against, shown even when dominated
    reference = [c for c in front.candidates if c.episode == 0 and (c.experiment_id, c.episode) not in on_front]
    for c in [*front.front, *reference]:
        spread = f" (IQR {c.latency_iqr_ms:.1f})" if c.latency_iqr_ms is not None else ""
        table.add_row(
            str(c.episode) if c.episode else "0 (baseline, not on the front)",
            c.method,
            ", ".join(f"{k}={v}" for k, v in sorted(c.params.items())),
            f"{c.accuracy:.3f} [{c.ci_low:.2f}, {c.ci_high:.2f}]" + (f" (n={c.n}, promoted)" if c.promoted else ""),
            f"{c.latency_ms_per_token:.1f}{spread}",
            f"{c.peak_rss_mb:.0f}",
            f"{c.size_bytes / 2**20:.1f}",
            f"{c.compression_ratio:.2f}x" if c.compression_ratio else "-",
            *([f"{c.energy_j:.1f}" + ("" if c.energy_mode == "measured" else f" ({c.energy_mode})")] if energy else []),
            *[f"{c.secondary[t]:.3g}" if t in c.secondary else "-" for t in secondary],
        )
    return table
