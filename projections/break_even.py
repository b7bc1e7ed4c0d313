"""Energy break-even of a compressed candidate: what producing it cost against what it saves.

Spent: the energy of every compression step's job of the episode (`<kind>.completed` v3 records
it). Saved: the baseline's energy per 1,000 generated tokens minus the candidate's, each the mean
power over its latency measurement times its decode ms/token (W x ms/token = J per 1,000 tokens). It
pays back after spent / saved x 1,000 tokens; a candidate that saves nothing never does.

Every figure keeps its label: `measured` only when every input came from a hardware counter,
`estimated` when any came from codecarbon's constants, `unknown` when one is missing (a log from before
energy was recorded, say) — and the row says which. A pure fold over the events; no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from greenai.events import Envelope
from greenai.events.experiment import EpisodeDecided
from greenai.events.results import Energy, EvaluateCompleted, Latency, StepCompleted


def joules_per_1k_tokens(latency: Latency) -> float | None:
    """Energy of 1,000 generated tokens: the latency phase's mean power times its decode ms/token."""
    e = latency.energy
    if e is None or e.mode == "unavailable" or not e.seconds or e.seconds <= 0:
        return None
    return e.joules / e.seconds * latency.decode_ms_per_token


def break_even_tokens(spent_j: float, baseline_j_per_1k: float, candidate_j_per_1k: float) -> float | None:
    """Generated tokens after which the candidate has saved the energy its production cost; None when
    it saves nothing per token (it never pays back). Producing it for free pays back at once (0)."""
    saved = baseline_j_per_1k - candidate_j_per_1k
    if saved <= 0:
        return None
    return max(spent_j, 0.0) / saved * 1000.0


def combined_mode(energies: Iterable[Energy | None]) -> str:
    """`measured` if every figure was, `unknown` if any is missing or unavailable, else `estimated`."""
    modes = [e.mode if e is not None else "unknown" for e in energies]
    if any(m in ("unknown", "unavailable") for m in modes):
        return "unknown"
    return "measured" if modes and all(m == "measured" for m in modes) else "estimated"


class BreakEven(BaseModel):
    """One candidate's row of the break-even table."""

    model_config = ConfigDict(frozen=True)

    experiment_id: str
    episode: int
    pipeline: str
    steps: int
    spent_j: float | None
    baseline_j_per_1k: float | None
    candidate_j_per_1k: float | None
    saved_j_per_1k: float | None
    tokens: float | None  # pays back after this many generated tokens; None: never, or unknown (see mode/note)
    pays_back: bool | None  # None: unknown
    mode: str  # measured, estimated or unknown: of the whole row
    spent_mode: str = "unknown"  # of the spent figure alone
    per_token_mode: str = "unknown"  # of the per-token figures (baseline's and candidate's) alone
    note: str = ""


@dataclass
class _Episode:
    decision: EpisodeDecided | None = None
    steps: dict[int, StepCompleted] = field(default_factory=dict)
    evaluated: EvaluateCompleted | None = None
    promoted: EvaluateCompleted | None = None

    @property
    def result(self) -> EvaluateCompleted | None:
        return self.promoted or self.evaluated  # as the front reads it: the larger evaluation when there is one


def _fold(events: Iterable[Envelope]) -> dict[tuple[str, int], _Episode]:
    eps: dict[tuple[str, int], _Episode] = {}
    for env in events:
        d = env.data
        if isinstance(d, EpisodeDecided | StepCompleted | EvaluateCompleted):
            ep = eps.setdefault((env.experiment_id, d.episode), _Episode())
            if isinstance(d, EpisodeDecided) and ep.decision is None:
                ep.decision = d
            elif isinstance(d, StepCompleted):
                ep.steps.setdefault(d.step, d)  # a redelivered job completes once
            elif isinstance(d, EvaluateCompleted) and d.purpose == "promotion":
                ep.promoted = ep.promoted or d
            elif isinstance(d, EvaluateCompleted):
                ep.evaluated = ep.evaluated or d
    return eps


def _row(exp: str, n: int, ep: _Episode, base: EvaluateCompleted | None) -> BreakEven:
    planned = len(ep.decision.steps) if ep.decision is not None else len(ep.steps)
    pipeline = (ep.decision.method if ep.decision is not None else None) or "?"
    done = [ep.steps[i] for i in sorted(ep.steps)]
    notes: list[str] = []
    spent: float | None = sum(s.energy.joules for s in done if s.energy is not None)
    if any(s.energy is None or s.energy.mode == "unavailable" for s in done) or len(done) < planned:
        spent = None
        notes.append("a step's energy was not recorded")
    result = ep.result
    base_j = joules_per_1k_tokens(base.latency) if base is not None else None
    cand_j = joules_per_1k_tokens(result.latency) if result is not None else None
    if base_j is None:
        notes.append("baseline's energy per token not recorded")
    if cand_j is None:
        notes.append("candidate's energy per token not recorded")
    spent_mode = combined_mode(s.energy for s in done) if spent is not None else "unknown"
    per_token = [base.latency.energy if base else None, result.latency.energy if result else None]
    per_token_mode = combined_mode(per_token)
    mode = combined_mode([*(s.energy for s in done), *per_token])
    saved = base_j - cand_j if base_j is not None and cand_j is not None else None
    tokens = None
    if spent is not None and base_j is not None and cand_j is not None:
        tokens = break_even_tokens(spent, base_j, cand_j)
    if saved is not None and saved <= 0:
        notes.append("uses as much energy per token as the baseline or more: never pays back")
    known = spent is not None and saved is not None
    return BreakEven(
        experiment_id=exp, episode=n, pipeline=pipeline, steps=len(done), spent_j=spent,
        baseline_j_per_1k=base_j, candidate_j_per_1k=cand_j, saved_j_per_1k=saved, tokens=tokens,
        pays_back=(tokens is not None) if known else None, mode="unknown" if not known else mode,
        spent_mode=spent_mode, per_token_mode=per_token_mode, note="; ".join(notes),
    )  # fmt: skip


def break_even(events: Iterable[Envelope], candidates: Collection[tuple[str, int]] | None = None) -> list[BreakEven]:
    """A row for every evaluated compressed candidate (or those named as (experiment, episode)), in
    log order of experiment then episode; each against its own experiment's baseline."""
    eps = _fold(events)
    rows = []
    for (exp, n), ep in sorted(eps.items()):
        if n == 0 or ep.result is None or (candidates is not None and (exp, n) not in candidates):
            continue
        base = eps.get((exp, 0))
        rows.append(_row(exp, n, ep, base.result if base is not None else None))
    return rows
