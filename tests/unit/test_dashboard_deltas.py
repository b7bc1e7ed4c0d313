"""What a page is sent after its snapshot: only the points and the part of the hypervolume curve that
changed, so a result in a 1,000-point experiment costs a few points, not all of them; and the rows and
points a model gives are made once per change and shared."""

from __future__ import annotations

from greenai.services.dashboard import views
from greenai.shared.eventstore_records import StoredEvent
from tests import factories as f
from tests.unit.test_dashboard_readmodel import a_run, fold


def test_a_delta_sends_the_points_and_curve_entries_the_page_does_not_hold_yet() -> None:
    read = fold(a_run())
    model = read.get("e")
    assert model is not None
    sent = views.PointsSent()
    whole = views.experiment_snapshot(model)
    sent.whole(whole)
    since = read.last_seq
    read.apply(StoredEvent(since + 1, f.decided("e", 3)))
    read.apply(StoredEvent(since + 2, f.evaluated("e", 3, 0.9, 10, 100, 500)))  # better on every axis
    delta = sent.changes(views.experiment_delta(model, since))
    full = views.points(model)
    assert "points" not in delta and delta["points_total"] == len(full) == len(whole["points"]) + 1
    changed = {p["episode"] for p in delta["points_changed"]}
    assert 3 in changed and changed == {p["episode"] for p in full if p not in whole["points"]}
    assert delta["points_removed"] == []
    curve = model.hypervolume()
    held = whole["hypervolume"]
    assert held[: delta["hypervolume_from"]] + delta["hypervolume_tail"] == curve
    assert len(delta["hypervolume_tail"]) < len(curve)
    # nothing new for the chart: no point and no curve is sent again
    read.apply(StoredEvent(since + 3, f.step_requested("e", 4)))
    quiet = sent.changes(views.experiment_delta(model, since + 2))
    assert not {"points", "points_changed", "hypervolume", "hypervolume_tail"} & set(quiet)


def test_rows_and_points_are_made_once_per_change_and_never_shared_mutably() -> None:
    read = fold(a_run())
    model = read.get("e")
    assert model is not None
    assert views.points(model) is views.points(model)  # one computation for every page streaming it
    row = views.summary(model)
    row["status"] = "scribbled on by a caller"
    assert views.summary(model)["status"] != row["status"]
    read.apply(StoredEvent(read.last_seq + 1, f.evaluated("e", 3, 0.9, 10, 100, 500)))
    assert len(views.points(model)) == 4
    assert set(views.listed_row(views.summary(model))) == set(views.LISTED)
