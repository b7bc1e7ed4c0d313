"""`greenai dashboard` in a real Chromium: the pages draw the log (error bars, baseline, front, timeline,
agents), follow appends without a reload, keep hostile text as text, and answer an unknown id with a 404.
Every test fails on a console error."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.experiment import EpisodeDecided, Step
from greenai.shared.auth import AuthFiles
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats
from tests import factories as f
from tests.integration.dashboard_browser import browser, needs_browser, open_page, running_dashboard

pytestmark = [pytest.mark.slow, needs_browser]

HOSTILE = "<img src=x onerror=\"document.title='owned'\"><script>document.title='owned'</script>"


@pytest.fixture
def dashboard(server: EmbeddedNats, log: EventStore, auth: AuthFiles, tmp_path: Path) -> Iterator[str]:
    with running_dashboard(server.url, tmp_path / "auth", tmp_path / "dash") as url:
        yield url


async def test_pages_draw_the_log_and_follow_appends_without_a_reload(dashboard: str, log: EventStore) -> None:
    hostile = EpisodeDecided(
        episode=2, action="compress", steps=[Step(kind="quantize", method="rtn")], policy="llm", rationale=HOSTILE
    )
    events = [
        f.run("e", episodes=4), f.spec("e"), f.evaluate_requested("e", 0), f.evaluated("e", 0, 0.6, 50, 500, 4000),
        f.decided("e", 1), f.step_requested("e", 1), f.step_completed("e", 1), f.evaluated("e", 1, 0.55, 30, 300, 2000),
        new_event("e", hostile, producer="t"), f.evaluated("e", 2, 0.4, 40, 400, 3000),
    ]  # fmt: skip
    offers = f.agent_offers()
    live = f.announced("quantization", "quantize", list(offers.of_kind("quantize")), interval_s=60)
    gone = f.announced("pruning", "prune", list(offers.of_kind("prune")), interval_s=5)
    gone = gone.model_copy(update={"time": datetime.now(UTC) - timedelta(minutes=5)})
    for env in [*events, live, gone]:
        await log.append(env)

    async with browser() as b:
        page, _ = await open_page(b, dashboard + "/")
        row = page.page.locator('tr.exp[data-id="e"]')
        await row.wait_for(timeout=15_000)
        assert await row.locator("td.status").inner_text() == "running"
        assert "2/4" in await row.inner_text()

        await row.locator("a").click()
        p = page.page
        await p.wait_for_selector('#chart[data-points="3"]', timeout=15_000)
        assert await p.locator("#chart g.errorbar").count() >= 3, "accuracy drawn with its interval"
        assert "baseline (uncompressed)" in await p.locator("#chart").inner_text()
        assert await p.locator("#timeline tr.episode").count() == 2
        rationale = p.locator('#timeline tr[data-episode="2"] td.rationale')
        assert await rationale.inner_text() == HOSTILE, "an LLM's text is shown as text"
        assert await p.locator("#timeline img, #timeline script").count() == 0
        assert await p.title() != "owned"

        for env in [f.decided("e", 3), f.evaluated("e", 3, 0.58, 20, 250, 1500)]:
            await log.append(env)
        await p.wait_for_selector('#chart[data-points="4"]', timeout=10_000)
        await p.wait_for_selector('#timeline tr[data-episode="3"]', timeout=10_000)
        assert await p.locator("#tail tr.event").count() >= len(events) + 2

        await p.select_option("#axis-x", "size_mib")
        await p.select_option("#axis-y", "peak_rss_mb")
        assert "size on disk" in await p.locator("#chart").inner_text()

        agents, _ = await open_page(b, dashboard + "/agents")
        await agents.page.wait_for_selector("tr.agent", timeout=15_000)
        assert await agents.page.locator('tr.agent.live[data-instance="quantization@h"]').count() == 1
        assert await agents.page.locator('tr.agent.stale[data-instance="pruning@h"]').count() == 1
        errors = page.errors + agents.errors
    assert errors == []


async def test_a_console_error_is_seen(dashboard: str) -> None:
    """The check every test relies on: a script error and an unexpected 404 are both caught."""
    async with browser() as b:
        page, _ = await open_page(b, dashboard + "/agents")
        await page.page.evaluate("setTimeout(() => noSuchFunction(), 0)")
        await page.page.wait_for_timeout(300)
        missing, _ = await open_page(b, dashboard + "/nope")
    assert any("noSuchFunction" in e for e in page.errors), page.errors
    assert any("404" in e for e in missing.errors), missing.errors


async def test_an_unknown_experiment_is_a_404_page(dashboard: str) -> None:
    async with browser() as b:
        page, response = await open_page(b, dashboard + "/experiments/no-such-run", expect_404=True)
        assert response.status == 404
        assert "No experiment 'no-such-run' in the log" in await page.page.locator("#missing").inner_text()
        assert await page.page.title() == "Experiment not found · GreenAI"
        for path in ("/experiments/" + "x" * 81, "/experiments/a.b", "/experiments/..%2F..%2Fetc%2Fpasswd", "/nope"):
            bad, response = await open_page(b, dashboard + path, expect_404=True)
            assert response.status == 404, path
            assert await bad.page.locator("h1").inner_text() == "Not found", path
            assert await bad.page.locator("p.notfound").inner_text(), path
            page.errors += bad.errors
    assert page.errors == []
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(dashboard + "/api/experiments/no-such-run", timeout=10)
    assert answer.value.code == 404
    assert "no experiment" in json.loads(answer.value.read())["detail"]
