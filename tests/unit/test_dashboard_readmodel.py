"""The dashboard's read model and views: the projections' folds, kept event by event, give what the pages show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from greenai.events import Envelope, new_event
from greenai.events.experiment import EpisodeDecided, ExperimentFailed, Step
from greenai.events.jobs import EventRejected, JobStarted
from greenai.projections.pareto import pareto_front
from greenai.services.dashboard import views
from greenai.services.dashboard.readmodel import ReadModel
from greenai.shared.eventstore_records import StoredEvent, Unreadable
from tests import factories as f


def fold(events: list[Envelope], start: int = 1) -> ReadModel:
    read = ReadModel()
    for seq, env in enumerate(events, start):
        read.apply(StoredEvent(seq, env))
    return read


def started(exp: str, job_id: str, instance: str) -> Envelope:
    data = JobStarted(job_id=job_id, kind="quantize", agent="quantization", instance=instance, attempt=1)
    return new_event(exp, data, producer=instance)


def a_run() -> list[Envelope]:
    return [
        f.run("e", episodes=3), f.spec("e"), f.evaluate_requested("e", 0), f.evaluated("e", 0, 0.6, 50, 500, 4000),
        f.decided("e", 1), f.step_requested("e", 1), started("e", "e-ep1-s0-quantize", "quantization@h"),
        f.step_completed("e", 1), f.evaluate_requested("e", 1), f.evaluated("e", 1, 0.55, 30, 300, 2000),
        f.decided("e", 2), f.evaluated("e", 2, 0.4, 40, 400, 3000),
    ]  # fmt: skip


def test_points_are_the_pareto_folds_candidates_with_intervals_and_the_baseline() -> None:
    events = a_run()
    read = fold(events)
    model = read.get("e")
    assert model is not None
    pts = {p["episode"]: p for p in views.points(model)}
    front = pareto_front(events)
    assert set(pts) == {c.episode for c in front.candidates}
    assert {n for n, p in pts.items() if p["front"]} == {c.episode for c in front.front}
    assert pts[0]["baseline"] and not pts[1]["baseline"]
    assert (pts[1]["ci_low"], pts[1]["accuracy"], pts[1]["ci_high"]) == pytest.approx((0.45, 0.55, 0.65))
    assert pts[1]["latency_iqr"] is None  # a v1-shaped latency: no spread measured
    assert pts[1]["artifact"] == f.artifact("1/0").sha256


def test_summary_and_timeline_of_a_running_experiment() -> None:
    read = fold(a_run())
    model = read.get("e")
    assert model is not None
    s = views.summary(model)
    assert (s["status"], s["episodes_done"], s["episodes_planned"]) == ("running", 2, 3)
    assert s["best_accuracy"] == 0.55 and s["baseline_accuracy"] == 0.6
    row = views.episode_row(model, 1)
    assert row is not None
    assert row["rationale"] == "r" and row["policy"] == "grid"
    step, evaluate = row["steps"]
    assert (step["state"], step["instance"], step["wall_s"]) == ("done", "quantization@h", 1.0)
    assert evaluate["state"] == "done"


def test_a_step_running_on_an_instance_and_what_the_agent_is_doing() -> None:
    events = [f.run("e"), f.decided("e", 1), f.step_requested("e", 1), started("e", "e-ep1-s0-quantize", "q@h")]
    read = fold(events)
    model = read.get("e")
    assert model is not None
    row = views.episode_row(model, 1)
    assert row is not None and row["steps"][0]["state"] == "running" and row["steps"][0]["instance"] == "q@h"
    assert read.doing["q@h"][1].job_id == "e-ep1-s0-quantize"
    read.apply(StoredEvent(10, f.step_completed("e", 1)))
    assert "q@h" not in read.doing


def test_a_failed_step_shows_the_reason() -> None:
    read = fold([f.run("e"), f.decided("e", 1), f.step_requested("e", 1), f.failed("e", "e-ep1-s0-quantize", 1)])
    model = read.get("e")
    assert model is not None
    row = views.episode_row(model, 1)
    assert row is not None
    assert row["status"] == "failed" and row["steps"][0]["state"] == "failed"
    assert "group size does not divide" in row["failure"]


def test_failed_and_rejected_experiments_carry_their_reason() -> None:
    failed = new_event("bad", ExperimentFailed(reason="unknown model 'x'", error_type="ModelNotFound"), producer="c")
    rejected = new_event(
        "rej", EventRejected(subject="greenai.evt.rej.run.requested", agent="c", reason="episodes: too many", raw="{}"),
        producer="c",
    )  # fmt: skip
    read = fold([f.run("bad"), failed, rejected])
    rows = {m.experiment_id: views.summary(m) for m in read.listed()}
    assert (rows["bad"]["status"], rows["bad"]["reason"]) == ("failed", "unknown model 'x'")
    assert (rows["rej"]["status"], rows["rej"]["reason"]) == ("rejected", "episodes: too many")


def test_a_delta_carries_only_what_changed_after_the_sequence() -> None:
    events = a_run()
    read = fold(events)
    model = read.get("e")
    assert model is not None
    since = read.last_seq
    nothing = views.experiment_delta(model, since)
    assert nothing["episodes"] == [] and nothing["tail"] == [] and "points" not in nothing
    read.apply(StoredEvent(since + 1, f.step_requested("e", 2)))
    delta = views.experiment_delta(model, since)
    assert [e["episode"] for e in delta["episodes"]] == [2] and "points" not in delta
    assert [t["seq"] for t in delta["tail"]] == [since + 1]
    read.apply(StoredEvent(since + 2, f.evaluated("e", 2, 0.7, 20, 200, 1000)))  # a repeat: counted once
    delta = views.experiment_delta(model, since + 1)
    assert "points" in delta and len(delta["points"]) == 3


def test_agents_grey_out_once_their_heartbeat_is_overdue() -> None:
    offers = f.agent_offers()
    read = fold([f.announced("quantization", "quantize", list(offers.of_kind("quantize")), interval_s=10)])
    (row,) = views.agents(read, datetime.now(UTC))
    assert row["live"] and row["kind"] == "quantize" and row["methods"]
    (row,) = views.agents(read, datetime.now(UTC) + timedelta(seconds=31))
    assert not row["live"]


def test_an_announcement_in_another_roles_name_is_not_an_agent() -> None:
    env = f.announced("quantization", "quantize", [])
    forged = env.model_copy(update={"experiment_id": "_agents-pruning"})
    read = fold([forged])
    assert views.agents(read, datetime.now(UTC)) == []


def test_unreadable_messages_are_counted_not_shown_as_experiments() -> None:
    read = ReadModel()
    read.apply(Unreadable(1, "greenai.evt.x.run.requested", "bad JSON"))
    assert read.unreadable == 1 and read.listed() == [] and read.last_seq == 1


def test_a_rationale_is_kept_as_text() -> None:
    hostile = "<img src=x onerror=alert(1)></td><script>alert(2)</script>"
    step = Step(kind="quantize", method="rtn", params={})
    decided = EpisodeDecided(episode=1, action="compress", steps=[step], policy="llm", rationale=hostile)
    read = fold([f.run("e"), new_event("e", decided, producer="c")])
    model = read.get("e")
    assert model is not None
    row = views.episode_row(model, 1)
    assert row is not None and row["rationale"] == hostile  # the page sets it as textContent (browser test)
