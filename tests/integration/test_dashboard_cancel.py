"""An interactive run steered from the page in a real Chromium: its proposal edited (the steps typed in
the page, `decision.reviewed` with verdict edit in the log), then the experiment cancelled from the
page (`experiment.cancelled`, shown cancelling; the coordinator completes it and the page shows it
cancelled without a reload); a second cancel refused with `greenai cancel`'s words; the hypervolume
curve drawn; the compare page drawing two experiments on one chart. Any console error fails it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.cancellation import ExperimentCancelled
from greenai.events.experiment import DecisionProposed, DecisionReviewed, Step
from greenai.services.coordinator.agent import Coordinator
from greenai.shared.auth import AuthFiles
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats
from tests import factories as f
from tests.integration.dashboard_browser import browser, needs_browser, open_page, running_dashboard
from tests.integration.test_dashboard_actions import post

pytestmark = [pytest.mark.slow, needs_browser]
EDITED = [{"kind": "prune", "method": "magnitude", "params": {"sparsity": 0.3}}]


async def test_a_proposal_is_edited_and_the_run_cancelled_from_the_page(
    server: EmbeddedNats, log: EventStore, auth: AuthFiles, data_dir: Path, tmp_path: Path
) -> None:
    step = Step(kind="quantize", method="rtn", params={"bits": 8})
    proposed = DecisionProposed(episode=1, proposal=1, action="compress", steps=[step], policy="grid", rationale="r")
    ask = [
        f.run("ask", episodes=3, interactive=True), f.spec("ask"), f.staged("ask"), f.evaluate_requested("ask", 0),
        f.evaluated("ask", 0, 0.6, 50, 500, 4000), new_event("ask", proposed, producer="c"),
    ]  # fmt: skip
    other = [f.run("other"), f.evaluated("other", 0, 0.5, 40, 400, 3000), f.evaluated("other", 1, 0.45, 20, 300, 900)]
    for env in [*ask, *other]:
        await log.append(env)
    with running_dashboard(server.url, tmp_path / "auth", tmp_path / "dash") as url:
        async with browser() as b:
            page, _ = await open_page(b, url + "/experiments/ask")
            p = page.page
            await p.wait_for_selector('#hv-chart[data-points="1"]', timeout=15_000)
            await p.click("#review-edit")  # shows the proposal's steps to change
            await p.fill("#review-steps", json.dumps(EDITED))
            await p.click("#review-edit")
            await p.locator("#review-result", has_text=re.compile("^edited$")).wait_for()
            (review,) = [e.envelope.data async for e in log.read_everything("greenai.evt.ask.decision.reviewed")]
            assert isinstance(review, DecisionReviewed) and review.verdict == "edit"
            assert [s.model_dump() for s in review.steps] == EDITED

            await p.fill("#cancel-reason", "wrong target")
            await p.click("#cancel-ask")
            await p.click("#cancel-confirm")
            await p.locator("#cancel-result", has_text=re.compile("^cancellation requested$")).wait_for()
            await p.wait_for_selector("#status.status-cancelling", timeout=15_000)
            (cancel,) = [e.envelope async for e in log.read_everything("greenai.evt.ask.experiment.cancelled")]
            assert isinstance(cancel.data, ExperimentCancelled) and cancel.producer == "dashboard"
            assert (cancel.data.requested_by, cancel.data.reason) == ("dashboard", "wrong target")
            assert await p.locator("#cancel-ask").count() == 0  # nothing left to cancel
            status, answer = post(
                url + "/api/experiments/ask/cancel", b"{}", {"Content-Type": "application/json"}
            )  # fmt: skip
            assert status == 409 and "already cancelled" in answer["error"]

            # the coordinator honours it: nothing decided from the edited review, the run completes
            coordinator = Coordinator(log, Settings(work_dir=tmp_path / "work", data_dir=data_dir))
            assert await coordinator.react("ask")
            await p.wait_for_selector("#status.status-cancelled", timeout=15_000)
            assert "cancelled by dashboard: wrong target" in await p.inner_text("#summary")
            types = [e.envelope.type for e in (await log.read("ask")).events]
            assert types[-3:] == ["decision.reviewed", "experiment.cancelled", "experiment.completed"], types

            compare, _ = await open_page(b, url + "/compare?e=ask&e=other")
            await compare.page.wait_for_selector('#chart[data-experiments="2"]', timeout=15_000)
            assert await compare.page.locator("#compared tr.exp").count() == 2
            errors = page.errors + compare.errors
    assert errors == []
