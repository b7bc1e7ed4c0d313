"""The dashboard's cancel, edit and compare, and its hypervolume curve, without a browser: what the views
say, what the forms accept (with the CLI's words for what they refuse), and the curve's fold."""

from __future__ import annotations

import random

import pytest

from greenai.events import Envelope, new_event
from greenai.events.cancellation import ExperimentCancelled
from greenai.events.experiment import DecisionProposed, ExperimentCompleted, Step
from greenai.projections.pareto import Candidate, hypervolume, pareto_front
from greenai.services.dashboard import views
from greenai.services.dashboard.actions import CancelForm, Refused, ReviewForm, cancel_request, parse, review_event
from greenai.services.dashboard.hypervolume import REFERENCE, HypervolumeCurve, volume
from greenai.services.dashboard.readmodel import ReadModel
from greenai.shared.eventstore_records import StoredEvent
from tests import factories as f


def fold(events: list[Envelope]) -> ReadModel:
    read = ReadModel()
    for seq, env in enumerate(events, 1):
        read.apply(StoredEvent(seq, env))
    return read


def running(exp: str = "e") -> list[Envelope]:
    return [
        f.run(exp, episodes=3), f.spec(exp), f.staged(exp), f.evaluate_requested(exp, 0),
        f.evaluated(exp, 0, 0.6, 50, 500, 4000), f.decided(exp, 1), f.step_requested(exp, 1),
    ]  # fmt: skip


def cancelled(exp: str = "e") -> Envelope:
    return new_event(exp, ExperimentCancelled(requested_by="ann", reason="enough"), producer="cli", key="cancel")


# ---- cancel ----------------------------------------------------------------------------------------


def test_a_cancelled_experiment_shows_cancelling_then_cancelled() -> None:
    read = fold(running())
    model = read.get("e")
    assert model is not None
    assert views.summary(model)["cancellable"]
    read.apply(StoredEvent(20, cancelled()))
    s = views.summary(model)
    assert (s["status"], s["reason"], s["cancellable"]) == ("cancelling", "cancelled by ann: enough", False)
    assert views.episode_row(model, 1)["status"] == "step 1/1 running"  # its job finishes
    read.apply(StoredEvent(21, f.step_completed("e", 1)))
    assert views.episode_row(model, 1)["status"] == "cancelled"  # no evaluation will be requested
    done = ExperimentCompleted(reason="cancelled by ann: enough", episodes_run=1)
    read.apply(StoredEvent(22, new_event("e", done, producer="c")))
    assert views.status_of(model) == ("cancelled", "cancelled by ann: enough")


def test_the_page_cancels_as_greenai_cancel_does_and_refuses_with_its_words() -> None:
    read = fold([*running(), *running("other")])
    env = cancel_request(read, "e", CancelForm(reason="wrong target"))
    assert isinstance(env.data, ExperimentCancelled) and env.producer == "dashboard"
    assert (env.data.requested_by, env.data.reason) == ("dashboard", "wrong target")
    from greenai.cli.cancel import cancel_event

    state = read.get("e")
    assert state is not None  # the same keyed event as the terminal's: whichever comes first is the one
    assert env.event_id == cancel_event("e", state.state, "ann", "").event_id
    with pytest.raises(Refused) as unknown:
        cancel_request(read, "nobody", CancelForm())
    assert unknown.value.status == 404 and str(unknown.value) == "no experiment 'nobody' in the log"
    read.apply(StoredEvent(30, cancelled()))
    with pytest.raises(Refused, match="already cancelled") as again:
        cancel_request(read, "e", CancelForm())
    assert again.value.status == 409
    for bad in ({"reason": "x" * 2001}, {"requested_by": ""}, {"reason": "r", "rm": "-rf"}, ["reason"], "x"):
        with pytest.raises(Refused, match=r"^bad form"):
            parse(CancelForm, bad)


# ---- edit in interactive mode --------------------------------------------------------------------------


def waiting() -> ReadModel:
    step = Step(kind="quantize", method="rtn", params={"bits": 8})
    proposed = DecisionProposed(episode=1, proposal=1, action="compress", steps=[step], policy="grid", rationale="r")
    return fold([f.run("ask", interactive=True), f.spec("ask"), new_event("ask", proposed, producer="c")])


def test_a_proposal_is_edited_with_the_steps_a_person_typed() -> None:
    read = waiting()
    model = read.get("ask")
    assert model is not None
    proposal = views.summary(model)["proposal"]
    assert proposal["step_objects"] == [{"kind": "quantize", "method": "rtn", "params": {"bits": 8}}]
    steps = [{"kind": "prune", "method": "magnitude", "params": {"sparsity": 0.3}}]
    form = parse(ReviewForm, {"episode": 1, "proposal": 1, "verdict": "edit", "steps": steps})
    env = review_event(read, "ask", form)
    assert env.data.verdict == "edit" and [s.model_dump() for s in env.data.steps] == steps
    end = parse(ReviewForm, {"episode": 1, "proposal": 1, "verdict": "edit", "steps": []})
    assert review_event(read, "ask", end).data.steps == []  # no steps: end the run, as the terminal's edit


@pytest.mark.parametrize(
    "body",
    [
        {"verdict": "edit"},  # edit without steps
        {"verdict": "approve", "steps": []},  # steps without edit
        {"verdict": "edit", "steps": [{"kind": "Quantize!", "method": "rtn"}]},  # not a step kind
        {"verdict": "edit", "steps": [{"kind": "quantize", "method": ""}]},
        {"verdict": "edit", "steps": [{"kind": "quantize", "method": "rtn", "shell": "rm"}]},
        {"verdict": "edit", "steps": [{"kind": "quantize", "method": "rtn"}] * 9},  # longer than any pipeline
        {"verdict": "edit", "steps": "[]"},
    ],
)
def test_a_bad_edit_is_refused_before_anything_is_appended(body: dict[str, object]) -> None:
    with pytest.raises(Refused, match=r"^bad form"):
        parse(ReviewForm, {"episode": 1, "proposal": 1, **body})


# ---- compare -------------------------------------------------------------------------------------------


def test_compare_gives_each_experiments_points_and_says_which_are_missing() -> None:
    read = fold([*running("a"), *running("b"), f.evaluated("b", 1, 0.5, 20, 200, 1000)])
    rows = [views.compared(read.get(x), x) for x in ("a", "b", "nope")]
    assert [r["exists"] for r in rows] == [True, True, False]
    assert [len(r["points"]) for r in rows[:2]] == [1, 2]
    assert {p["episode"] for p in rows[1]["points"] if p["front"]} == {0, 1}
    assert rows[0]["status"] == "running" and rows[1]["model"] == "m"


# ---- hypervolume ---------------------------------------------------------------------------------------


def cand(episode: int, acc: float, ms: float, size: int) -> Candidate:
    return Candidate(
        experiment_id="e", episode=episode, method="x", params={}, task="t", accuracy=acc, ci_low=acc, ci_high=acc,
        n=10, latency_ms_per_token=ms, peak_rss_mb=1, size_bytes=size, energy_j=0, energy_mode="none",
    )  # fmt: skip


def test_the_curve_starts_at_the_baselines_accuracy_and_never_falls() -> None:
    base = cand(0, 0.6, 50, 4000)
    curve = HypervolumeCurve().update([base])
    assert curve == [{"episode": 0, "hypervolume": pytest.approx(0.6)}]  # accuracy x 1 x 1 up to twice the baseline
    cands = [base, cand(1, 0.6, 25, 1000), cand(2, 0.3, 200, 9000), cand(3, 0.5, 10, 500)]
    values = [c["hypervolume"] for c in HypervolumeCurve().update(cands)]
    assert values[1] == pytest.approx(0.6 * 1.5 * 1.75)  # the faster, smaller model dominates the baseline
    assert values[2] == values[1]  # slower and larger than twice the baseline: adds nothing
    assert values[3] > values[2] and values == sorted(values)
    pts = [(1 - c.accuracy, c.latency_ms_per_token / 50, c.size_bytes / 4000) for c in cands]
    assert values[3] == pytest.approx(hypervolume(pts, REFERENCE), abs=1e-6)


def test_the_kept_curve_equals_a_fresh_one_after_every_change_and_recomputes_only_the_tail() -> None:
    kept = HypervolumeCurve()
    cands = [cand(0, 0.6, 50, 4000)]
    for n in range(1, 30):
        cands.append(cand(n, 0.3 + (n * 7 % 11) / 40, 10 + n * 13 % 60, 500 + n * 397 % 5000))
        assert kept.update(cands) == HypervolumeCurve().update(cands)
    fronts_before = list(kept.fronts)
    cands[20] = cand(20, 0.9, 5, 400)  # a promotion replaces episode 20's scores: from there on it changes
    assert kept.update(cands) == HypervolumeCurve().update(cands)
    assert kept.fronts[:20] == fronts_before[:20] and kept.fronts[20] != fronts_before[20]
    assert HypervolumeCurve().update(cands[1:]) == []  # no baseline yet: no curve


def test_the_sweep_gives_the_general_hypervolume() -> None:
    rng = random.Random(7)
    for n in (1, 2, 5, 12, 30):  # ties in the last coordinate on purpose
        pts = [(rng.uniform(0, 1.2), rng.uniform(0, 2.5), rng.choice((0.5, 1.0, rng.random() * 2.5))) for _ in range(n)]
        assert volume(pts) == pytest.approx(hypervolume(list[tuple[float, ...]](pts), REFERENCE), abs=1e-12), pts
    assert volume([]) == 0.0 and volume([(1.0, 0.0, 0.0), (0.0, 2.0, 0.0)]) == 0.0  # on the reference: nothing


def test_the_snapshot_and_a_delta_carry_the_curve() -> None:
    events = [
        *running(),
        f.step_completed("e", 1),
        f.evaluate_requested("e", 1),
        f.evaluated("e", 1, 0.55, 30, 300, 2000),
    ]
    read = fold(events)
    model = read.get("e")
    assert model is not None
    snap = views.experiment_snapshot(model)
    assert [c["episode"] for c in snap["hypervolume"]] == [0, 1]
    assert [c.episode for c in pareto_front(events).candidates] == [0, 1]
    since = read.last_seq
    read.apply(StoredEvent(since + 1, f.step_requested("e", 2)))
    assert "hypervolume" not in views.experiment_delta(model, since)  # no new result: no new curve
    read.apply(StoredEvent(since + 2, f.evaluated("e", 2, 0.7, 20, 200, 1000)))
    assert [c["episode"] for c in views.experiment_delta(model, since + 1)["hypervolume"]] == [0, 1, 2]
