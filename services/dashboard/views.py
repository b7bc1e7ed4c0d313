"""What the pages show, as JSON-ready dicts computed from the read model: experiment rows, one
experiment's points, timeline and tail, and the agents. The page only draws them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from greenai.events.results import EvaluateCompleted
from greenai.projections.capabilities import GRACE
from greenai.projections.experiment import EpisodeState
from greenai.projections.pareto import Candidate
from greenai.services.coordinator.cancellation import cancellation_reason
from greenai.services.dashboard.readmodel import ExperimentModel, ReadModel, TailItem


def status_of(model: ExperimentModel) -> tuple[str, str]:
    """(status, reason) as `greenai experiments` gives them; a request that never validated is rejected."""
    state = model.state
    if state.run is None:
        if state.failed is not None:
            return "rejected", state.failed.reason
        return "rejected", model.last_rejection or "no valid run request"
    if state.failed is not None:
        return "failed", state.failed.reason
    if state.completed is not None:
        return ("cancelled" if state.cancelled else "completed"), state.completed.reason
    if state.cancelled is not None:  # the jobs it had requested are finishing; then it completes
        return "cancelling", cancellation_reason(state)
    proposal = state.open_proposal()
    if proposal is not None and proposal[1] is None:
        return "waiting for review", ""
    return "running", ""


def summary(model: ExperimentModel) -> dict[str, Any]:
    """The experiment's row (made once per change of the model: every page and snapshot shares it)."""
    return dict(model.cached("summary", model.last_seq, lambda: _summary(model)))


# What the experiments page draws of a row: the rest (the proposal, the objective...) is the experiment page's.
LISTED = ("id", "status", "reason", "model", "dataset", "policy", "episodes_done", "episodes_planned",
          "best_accuracy", "baseline_accuracy", "started")  # fmt: skip


def listed_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in LISTED}


def _summary(model: ExperimentModel) -> dict[str, Any]:
    state, run = model.state, model.state.run
    status, reason = status_of(model)
    done = sum(1 for ep in state.episodes.values() if ep.finished and ep.decision.action != "end")
    compressed = [c.accuracy for c in model.front().candidates if c.episode != 0]
    base = state.baseline.result
    return {
        "id": model.experiment_id,
        "status": status,
        "reason": reason,
        "model": run.model if run else "?",
        "dataset": run.dataset if run else "?",
        "policy": run.policy if run else "?",
        "objective": run.objective if run else "?",
        "interactive": bool(run and run.interactive),
        "episodes_done": done,
        "episodes_planned": run.episodes if run else 0,
        "best_accuracy": max(compressed) if compressed else None,
        "baseline_accuracy": base.accuracy if base else None,
        "started": model.state.run_event.time.isoformat() if model.state.run_event else None,
        "events": state.events,
        "last_seq": model.last_seq,
        "proposal": _waiting(model) if status == "waiting for review" else None,
        "cancellable": status in ("running", "waiting for review"),
    }


def _waiting(model: ExperimentModel) -> dict[str, Any] | None:
    """The proposal a person is asked to review (interactive runs)."""
    waiting = model.state.open_proposal()
    if waiting is None:
        return None
    p = waiting[0]
    return {
        "episode": p.episode, "proposal": p.proposal, "action": p.action, "policy": p.policy,
        "rationale": p.rationale, "steps": [f"{s.kind} {s.method} {s.params or ''}".strip() for s in p.steps],
        "step_objects": [s.model_dump() for s in p.steps],
    }  # fmt: skip


def _evaluation_of(model: ExperimentModel, c: Candidate) -> EvaluateCompleted | None:
    state = model.state
    ep = state.episodes.get(c.episode)
    promotion = state.baseline.promotion if c.episode == 0 else ep.promotion if ep else None
    if c.promoted and promotion is not None and promotion.result is not None:
        return promotion.result
    if c.episode == 0:
        return state.baseline.result
    return ep.evaluated if ep else None


def points(model: ExperimentModel) -> list[dict[str, Any]]:
    """Every evaluated candidate with its interval, its latency spread where measured, and whether it
    is on the front (the Pareto fold decides, not the page). Made once per change of the results."""
    made: list[dict[str, Any]] = model.cached("points", model.results_seq, lambda: _points(model))
    return made


def _points(model: ExperimentModel) -> list[dict[str, Any]]:
    front = model.front()
    on_front = {c.episode for c in front.front}
    out = []
    for c in front.candidates:
        evaluated = _evaluation_of(model, c)
        ep = model.state.episodes.get(c.episode)
        final = ep.final_artifact if ep else None
        steps = ep.decision.steps if ep else []
        out.append(
            {
                "episode": c.episode,
                "baseline": c.episode == 0,
                "front": c.episode in on_front,
                "method": c.method,
                "steps": [f"{s.kind} {s.method}" for s in steps],
                "params": c.params,
                "task": c.task,
                "accuracy": c.accuracy,
                "ci_low": c.ci_low,
                "ci_high": c.ci_high,
                "n": c.n,
                "promoted": c.promoted,
                "latency_ms_per_token": c.latency_ms_per_token,
                "latency_iqr": evaluated.latency.decode_ms_iqr if evaluated else None,
                "peak_rss_mb": c.peak_rss_mb,
                "size_mib": c.size_bytes / 2**20,
                "energy_j": c.energy_j,
                "energy_mode": c.energy_mode,
                "compression_ratio": c.compression_ratio,
                "artifact": final.artifact.sha256 if final else None,
            }
        )
    return out


def _step_rows(model: ExperimentModel, ep: EpisodeState) -> list[dict[str, Any]]:
    rows = []
    for i, step in enumerate(ep.decision.steps):
        request, done = ep.requests.get(i), ep.completed.get(i)
        started = model.jobs.get(request.job_id) if request else None
        if done is not None:
            state = "done"
        elif ep.failure is not None and request is not None and ep.failure.job_id == request.job_id:
            state = "failed"
        elif started is not None:
            state = "running"
        elif request is not None:
            state = "queued"
        else:
            state = "pending"
        rows.append(
            {
                "name": f"{step.kind} {step.method}",
                "params": step.params,
                "state": state,
                "instance": started.instance if started else None,
                "wall_s": done.wall_s if done else None,
                "peak_rss_mb": done.peak_rss_mb if done else None,
            }
        )
    if ep.evaluate_request is not None:
        started = model.jobs.get(ep.evaluate_request.job_id)
        failed = ep.failure is not None and ep.failure.job_id == ep.evaluate_request.job_id
        state = "done" if ep.evaluated else "failed" if failed else "running" if started else "queued"
        rows.append(
            {
                "name": f"evaluate {ep.evaluate_request.task}",
                "params": {"limit": ep.evaluate_request.limit},
                "state": state,
                "instance": started.instance if started else None,
                "wall_s": ep.evaluated.wall_s if ep.evaluated else None,
                "peak_rss_mb": ep.evaluated.peak_rss_mb if ep.evaluated else None,
            }
        )
    return rows


def _episode_status(model: ExperimentModel, ep: EpisodeState) -> str:
    """The fold's status; an episode a cancellation stopped between its jobs says so."""
    if ep.decision.action == "end":
        return "end"
    running = any(i not in ep.completed for i in ep.requests) or (ep.evaluate_request and not ep.evaluated)
    if model.state.cancelled is not None and not ep.finished and not running:
        return "cancelled"
    return ep.status


def episode_row(model: ExperimentModel, number: int) -> dict[str, Any] | None:
    """One episode of the timeline: its decision (with the rationale and the LLM's cost), its steps and
    where each ran, and the failure's reason."""
    ep = model.state.episodes.get(number)
    if ep is None:
        return None
    calls = model.llm.get(number, [])
    steps = _step_rows(model, ep)
    walls = [s["wall_s"] for s in steps if s["wall_s"] is not None]
    return {
        "episode": number,
        "action": ep.decision.action,
        "status": _episode_status(model, ep),
        "policy": ep.decision.policy,
        "rationale": ep.decision.rationale,
        "decided_at": ep.decision_event.time.isoformat(),
        "steps": steps,
        "wall_s": sum(walls) if walls else None,
        "failure": f"{ep.failure.reason}: {ep.failure.error_type}: {ep.failure.message}" if ep.failure else None,
        "llm_calls": len(calls),
        "llm_tokens": sum((c.prompt_tokens or 0) + (c.completion_tokens or 0) for c in calls),
        "llm_cost_usd": sum(c.cost_usd or 0.0 for c in calls) if any(c.cost_usd for c in calls) else None,
    }


def tail_items(items: list[TailItem]) -> list[dict[str, Any]]:
    return [{"seq": t.seq, "time": t.time.isoformat(), "type": t.type, "text": t.text} for t in items]


def experiment_snapshot(model: ExperimentModel | None) -> dict[str, Any]:
    if model is None:
        return {"exists": False}
    return {
        "exists": True,
        "summary": summary(model),
        "points": points(model),
        "hypervolume": model.hypervolume(),
        "episodes": [r for n in sorted(model.state.episodes) if (r := episode_row(model, n))],
        "tail": tail_items(list(model.tail)),
    }


def experiment_delta(model: ExperimentModel, since: int) -> dict[str, Any]:
    """What changed after sequence `since`: the summary, the points when a result or decision came,
    the episodes touched, and the new events of the tail."""
    delta: dict[str, Any] = {"exists": True, "summary": summary(model)}
    if model.results_seq > since:
        delta["points"] = points(model)
        delta["hypervolume"] = model.hypervolume()
    changed = sorted(n for n, seq in model.episode_seq.items() if seq > since)
    delta["episodes"] = [r for n in changed if (r := episode_row(model, n))]
    delta["tail"] = tail_items([t for t in model.tail if t.seq > since])
    return delta


class PointsSent:
    """What one page holds of the charts: a delta carries only the points that changed since (a new
    result re-ranks a few; sending 1,000 points per result cost most of a delta), and of the
    hypervolume curve only the entries from the first that changed."""

    def __init__(self) -> None:
        self.points: dict[int, dict[str, Any]] = {}
        self.curve: list[dict[str, Any]] | None = None

    def whole(self, snap: dict[str, Any]) -> None:
        self.points = {p["episode"]: p for p in snap.get("points", [])}
        self.curve = snap.get("hypervolume")

    def changes(self, delta: dict[str, Any]) -> dict[str, Any]:
        if "points" in delta:
            now = {p["episode"]: p for p in delta.pop("points")}
            changed = [p for e, p in now.items() if self.points.get(e) != p]
            removed = [e for e in self.points if e not in now]
            if changed or removed:
                delta |= {"points_changed": changed, "points_removed": removed, "points_total": len(now)}
            self.points = now
        if "hypervolume" in delta:
            curve, old = delta.pop("hypervolume"), self.curve or []
            if curve != old:  # usually one entry more: only what differs from what the page holds is sent
                same = next(
                    (i for i, (a, b) in enumerate(zip(curve, old, strict=False)) if a != b), min(len(curve), len(old))
                )
                delta |= {"hypervolume_from": same, "hypervolume_tail": curve[same:]}
            self.curve = curve
        return delta


def compared(model: ExperimentModel | None, experiment_id: str) -> dict[str, Any]:
    """One experiment of the compare page: what tells it apart in the legend, and its points."""
    if model is None:
        return {"id": experiment_id, "exists": False}
    s = summary(model)
    keep = ("status", "model", "dataset", "policy", "objective", "episodes_done", "best_accuracy")
    return {"id": experiment_id, "exists": True, **{k: s[k] for k in keep}, "points": points(model)}


def agents(read: ReadModel, now: datetime) -> list[dict[str, Any]]:
    """Each instance's latest announcement; stale once its next heartbeat is overdue (the catalogue's rule)."""
    rows = []
    for instance, seen in sorted(read.catalogue.instances.items()):
        a = seen.announced
        doing = read.doing.get(instance)
        rows.append(
            {
                "instance": instance,
                "agent": a.agent,
                "kind": a.kind,
                "methods": [f"{m.kind} {m.name}" for m in a.methods],
                "host": a.hardware.host,
                "device": a.hardware.device + (f" ({a.hardware.gpu})" if a.hardware.gpu else ""),
                "cpus": a.hardware.cpus,
                "memory_gib": round(a.hardware.memory_bytes / 2**30, 1),
                "last_heartbeat": seen.at.isoformat(),
                "live": now - seen.at <= timedelta(seconds=GRACE * a.interval_s),
                "doing": f"{doing[1].kind} {doing[1].job_id} ({doing[0]})" if doing else None,
            }
        )
    return rows
