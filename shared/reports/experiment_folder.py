"""Writes an experiment's projections to its folder. Deterministic: the same log, the same bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from greenai.events import Envelope
from greenai.projections.break_even import break_even
from greenai.projections.experiment import ExperimentState, fold_experiment
from greenai.projections.pareto import ParetoFront, pareto_front
from greenai.projections.skills import SkillMemory
from greenai.shared.reports.charts import pareto_html


def _dump(obj: Any) -> str:
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dump(obj), encoding="utf-8")


def _m(model: BaseModel | None) -> dict[str, Any] | None:
    return model.model_dump(mode="json") if model is not None else None


def summary(state: ExperimentState, front: ParetoFront) -> dict[str, Any]:
    status = "failed" if state.failed else "completed" if state.completed else "running"
    return {
        "experiment_id": state.experiment_id,
        "status": status,
        "run": _m(state.run),
        "completion": _m(state.completed),
        "failure": _m(state.failed),
        "baseline": _m(state.baseline.result),
        "episodes": [
            {
                "episode": n,
                "status": ep.status,
                "method": ep.decision.method,
                "params": ep.decision.params,
                "accuracy": ep.evaluated.accuracy if ep.evaluated else None,
                "secondary": {x.task: x.value for x in ep.evaluated.secondary} if ep.evaluated else {},
                "promoted": (
                    {"accuracy": ep.promotion.result.accuracy, "n": ep.promotion.result.n}
                    if ep.promotion.result
                    else None
                ),
                "failure": ep.failure.message if ep.failure else None,
            }
            for n, ep in sorted(state.episodes.items())
        ],
        "pareto_front": [{"episode": c.episode, "method": c.method, "params": c.params} for c in front.front],
        "events": state.events,
        "rejected_messages": state.rejected,
    }


def write_experiment_folder(
    root: Path, experiment_id: str, events: list[Envelope], skills: SkillMemory | None = None
) -> Path:
    state = fold_experiment(experiment_id, events)
    front = pareto_front(events)
    folder = root / experiment_id
    _write(folder / "model_spec.json", _m(state.spec))
    _write(folder / "pareto_frontier.json", front)
    keys = {(c.experiment_id, c.episode) for c in front.front if c.episode != 0}
    _write(folder / "break_even.json", [r.model_dump(mode="json") for r in break_even(events, keys)])
    _write(folder / "final_results.json", summary(state, front))
    for n, ep in sorted(state.episodes.items()):
        _write(
            folder / f"episode_{n:03d}" / "strategy.json",
            {
                "decision": _m(ep.decision),
                "decided_by": ep.decision_event.producer,
                "jobs": [_m(r) for _, r in sorted(ep.requests.items())],
            },
        )
        _write(
            folder / f"episode_{n:03d}" / "results.json",
            {
                "status": ep.status,
                "steps": [_m(c) for _, c in sorted(ep.completed.items())],
                "evaluation": _m(ep.evaluated),
                "promotion": _m(ep.promotion.result),
                "failure": _m(ep.failure),
            },
        )
    if skills is not None:
        _write(folder / "skill_memory.json", skills)
    (folder / "pareto_visualization.html").write_text(
        pareto_html(front, f"GreenAI — {experiment_id}"), encoding="utf-8"
    )
    return folder
