"""Actions from the dashboard, as the `cli` role: a run requested from the page's form (refused with the
CLI's message, and nothing appended, when the benchmark is unknown), a proposal approved from the page
(`decision.reviewed` in the log), and the requests a browser of another site, a script or a read-only
dashboard may send, all refused with nothing appended."""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.experiment import DecisionProposed, DecisionReviewed, RunRequested, Step
from greenai.services.coordinator.admission import Refused, check_benchmarks
from greenai.shared.auth import AuthFiles
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats
from tests import factories as f
from tests.integration.dashboard_browser import browser, needs_browser, open_page, running_dashboard

pytestmark = [pytest.mark.slow, needs_browser]


async def types_in_log(log: EventStore) -> list[str]:
    return [e.envelope.type async for e in log.read_everything() if not e.envelope.experiment_id.startswith("_")]


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_a_run_is_requested_from_the_form_and_a_bad_one_refused_with_the_clis_message(
    server: EmbeddedNats, log: EventStore, auth: AuthFiles, data_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(Refused) as cli_says:
        check_benchmarks("no_such_benchmark", [], data_dir)
    with running_dashboard(server.url, tmp_path / "auth", tmp_path / "dash", data_dir) as url:
        async with browser() as b:
            page, _ = await open_page(b, url + "/")
            p = page.page
            await p.click("#run-box summary")
            await p.fill('input[name="dataset"]', "no_such_benchmark")
            await p.click('#run-form button[type="submit"]')
            await p.locator("#run-error", has_text=re.compile("^bad benchmark")).wait_for()
            assert await p.inner_text("#run-error") == f"bad benchmark: {cli_says.value}"
            await p.fill('input[name="dataset"]', "arc_easy")
            await p.fill('input[name="model"]', "../../etc/passwd")
            await p.click('#run-form button[type="submit"]')
            await p.locator("#run-error", has_text=re.compile("^model")).wait_for()
            assert await types_in_log(log) == []

            await p.fill('input[name="model"]', "tiny")
            await p.fill('input[name="episodes"]', "1")
            await p.select_option('select[name="policy"]', "grid")
            await p.fill('input[name="name"]', "from-the-page")
            await p.click('#run-form button[type="submit"]')
            await p.wait_for_url(url + "/experiments/from-the-page", timeout=15_000)
            await p.wait_for_selector("#summary #status", timeout=15_000)
            errors = page.errors
    # Chromium reports each refused request (HTTP 400) as a console error: those two, and nothing else
    refusals = [e for e in errors if "status of 400" in e and e.endswith("/api/runs)")]
    assert len(refusals) == 2 and len(errors) == 2, errors
    (run,) = [e.envelope async for e in log.read_everything("greenai.evt.from-the-page.run.requested")]
    assert isinstance(run.data, RunRequested)
    assert (run.data.model, run.data.dataset, run.data.episodes, run.data.limit) == ("tiny", "arc_easy", 1, 20)
    assert (run.data.policy, run.data.requested_by) == ("grid", "dashboard")


async def test_a_proposal_is_approved_from_the_page(
    server: EmbeddedNats, log: EventStore, auth: AuthFiles, tmp_path: Path
) -> None:
    step = Step(kind="quantize", method="rtn", params={"bits": 8})
    proposed = DecisionProposed(episode=1, proposal=1, action="compress", steps=[step], policy="grid", rationale="why")
    for env in [f.run("ask", episodes=2, interactive=True), f.spec("ask"), new_event("ask", proposed, producer="c")]:
        await log.append(env)
    with running_dashboard(server.url, tmp_path / "auth", tmp_path / "dash") as url:
        async with browser() as b:
            page, _ = await open_page(b, url + "/experiments/ask")
            p = page.page
            await p.wait_for_selector("#review-approve", timeout=15_000)
            assert "quantize rtn" in await p.inner_text("#review")
            await p.fill("#review-comment", "looks cheap")
            await p.click("#review-approve")
            await p.locator("#review-result", has_text=re.compile("^approved$")).wait_for()
            reviews = [e.envelope.data async for e in log.read_everything("greenai.evt.ask.decision.reviewed")]
            assert len(reviews) == 1 and isinstance(reviews[0], DecisionReviewed)
            assert (reviews[0].verdict, reviews[0].comment, reviews[0].episode) == ("approve", "looks cheap", 1)
            await p.wait_for_selector("#review-approve", state="detached", timeout=15_000)  # no longer waiting
            status, answer = post(
                url + "/api/experiments/ask/review",
                json.dumps({"episode": 1, "proposal": 1, "verdict": "reject"}).encode(),
                {"Content-Type": "application/json"},
            )
            assert status == 409 and "already reviewed" in answer["error"]
            errors = page.errors
    assert errors == []
    assert len([e async for e in log.read_everything("greenai.evt.ask.decision.reviewed")]) == 1


async def test_forged_oversized_and_read_only_actions_append_nothing(
    server: EmbeddedNats, log: EventStore, auth: AuthFiles, data_dir: Path, tmp_path: Path
) -> None:
    json_type = {"Content-Type": "application/json"}
    good = json.dumps({"dataset": "arc_easy", "model": "tiny", "episodes": 1, "name": "x1"}).encode()
    with running_dashboard(server.url, tmp_path / "auth", tmp_path / "dash", data_dir) as url:
        runs = url + "/api/runs"
        assert post(runs, good, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
        assert post(runs, good, {**json_type, "Origin": "http://evil.example"})[0] == 403
        assert post(runs, b'{"model": "' + b"a" * 20_000 + b'"}', json_type)[0] == 413
        assert post(runs, b"{not json", json_type)[0] == 400
        status, answer = post(runs, json.dumps({"dataset": "arc_easy", "rm": "-rf"}).encode(), json_type)
        assert status == 400 and "rm" in answer["error"]
        status, answer = post(runs, json.dumps({"dataset": "arc_easy", "episodes": 0}).encode(), json_type)
        assert status == 400 and answer["error"].startswith("bad run request:")
        status, answer = post(runs, json.dumps({"name": "a/b"}).encode(), json_type)
        assert status == 400 and "experiment id" in answer["error"]
        status, answer = post(runs, json.dumps({"dataset": "/etc/passwd"}).encode(), json_type)
        assert status == 400 and answer["error"].startswith("bad benchmark:")
        review = url + "/api/experiments/nothing-here/review"
        assert (
            post(review, json.dumps({"episode": 1, "proposal": 1, "verdict": "approve"}).encode(), json_type)[0] == 404
        )
    assert await types_in_log(log) == []

    read_only = tmp_path / "viewer-only"
    read_only.mkdir()
    shutil.copy(tmp_path / "auth" / "viewer.nk", read_only / "viewer.nk")
    with running_dashboard(server.url, read_only, tmp_path / "dash-ro", data_dir) as url:
        status, answer = post(url + "/api/runs", good, json_type)
        assert status == 403 and answer["error"].startswith("read-only")
        async with browser() as b:
            page, _ = await open_page(b, url + "/")
            assert await page.page.locator("#run-form").count() == 0
            assert "read-only" in await page.page.inner_text("p.readonly")
            errors = page.errors
    assert errors == []
    assert await types_in_log(log) == []
