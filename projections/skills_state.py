"""The skill fold's state as bytes and back, so a kept skill memory can be snapshotted and resumed.

A snapshot is read back from a bucket, so it is untrusted input: `load_state` validates every field
(strict types, no extra keys, counts non-negative) and rebuilds a fold only from what passed. The
running means keep their exact sums: JSON writes floats in their shortest round-tripping form, so a
resumed fold ends bit for bit where a full fold of the log would. Pure: bytes in, bytes out.
"""

from __future__ import annotations

from collections import deque

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from greenai.events.results import EvaluateCompleted
from greenai.projections.skills import SkillFold, _Acc, _Mean

# Bump when the meaning of a field changes; shared.kept_projection also fingerprints this module's and
# the fold's source, so an edit nobody versioned still invalidates old snapshots.
STATE_VERSION = 1
Count = Field(ge=0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeanState(_Strict):
    total: float
    n: int = Count


class SkillState(_Strict):
    family: str
    method: str
    params_key: str
    trials: int = Count
    failures: int = Count
    retained: MeanState
    size: MeanState
    latency: MeanState
    reasons: list[str] = Field(max_length=5)


class SkillFoldState(_Strict):
    version: int
    family: dict[str, str]
    episodes: list[tuple[str, int, str, str]]  # experiment, episode, method, params key
    jobs: list[tuple[str, str, int]]  # experiment, job id, episode
    baseline: dict[str, EvaluateCompleted]
    pending: dict[str, list[EvaluateCompleted]]
    counted: list[tuple[str, int]]
    skills: list[SkillState]


class StateRefused(ValueError):
    """The bytes are not a skill fold's state this code can resume from; the message says why."""


def _mean(m: _Mean) -> dict[str, float | int]:
    return {"total": m.total, "n": m.n}


def dump_state(fold: SkillFold) -> bytes:
    """The fold's whole state as JSON bytes (plain containers: building models per entry costs seconds)."""
    state = {
        "version": STATE_VERSION,
        "family": fold.family,
        "episodes": [(e, n, m, p) for (e, n), (m, p) in fold.episodes.items()],
        "jobs": [(e, j, n) for (e, j), n in fold.jobs.items()],
        "baseline": fold.baseline,
        "pending": fold.pending,
        "counted": sorted(fold.counted),
        "skills": [
            {
                "family": fam, "method": m, "params_key": p, "trials": a.trials, "failures": a.failures,
                "retained": _mean(a.retained), "size": _mean(a.size), "latency": _mean(a.latency),
                "reasons": list(a.reasons),
            }
            for (fam, m, p), a in fold.acc.items()
        ],
    }  # fmt: skip
    return to_json(state, inf_nan_mode="constants")  # a NaN stays a NaN (the default writes null)


def load_state(raw: bytes) -> SkillFold:
    """A fold resumed from `dump_state`'s bytes; anything malformed raises StateRefused."""
    try:
        state = SkillFoldState.model_validate_json(raw, strict=True)
    except ValueError as exc:
        raise StateRefused(f"not a skill fold state: {str(exc)[:300]}") from exc
    if state.version != STATE_VERSION:
        raise StateRefused(f"state version {state.version}, this code reads {STATE_VERSION}")
    fold = SkillFold()
    fold.family = dict(state.family)
    fold.episodes = {(e, n): (m, p) for e, n, m, p in state.episodes}
    fold.jobs = {(e, j): n for e, j, n in state.jobs}
    fold.baseline = dict(state.baseline)
    fold.pending = {exp: list(rs) for exp, rs in state.pending.items()}
    fold.counted = set(state.counted)
    for s in state.skills:
        fold.acc[(s.family, s.method, s.params_key)] = _Acc(
            trials=s.trials, failures=s.failures, retained=_Mean(s.retained.total, s.retained.n),
            size=_Mean(s.size.total, s.size.n), latency=_Mean(s.latency.total, s.latency.n),
            reasons=deque(s.reasons, maxlen=5),
        )  # fmt: skip
    return fold
