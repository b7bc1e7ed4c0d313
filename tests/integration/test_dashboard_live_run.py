"""The experiment page, opened before the run is requested, fills in live: a one-episode run on the tiny
model with the agents as processes; the points (baseline and episode, with intervals) and the timeline
appear without a reload, and the page ends showing the run completed. No console error on the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.experiment import RunRequested
from greenai.shared.auth import AuthFiles
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats
from tests.integration.dashboard_browser import browser, needs_browser, open_page, running_dashboard
from tests.integration.helpers import agent_env, coordinator_model, finished, start_agent, stop_agents, wait_for

pytestmark = [pytest.mark.slow, needs_browser]


async def test_the_page_opened_before_the_run_shows_it_live(
    server: EmbeddedNats, log: EventStore, auth: AuthFiles, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    env = agent_env(server.url, tmp_path / "work", data_dir)
    exp = "live-dash"
    procs = {n: start_agent(n, env, tmp_path / "logs") for n in ("coordinator", "quantization", "evaluation")}
    try:
        with running_dashboard(server.url, tmp_path / "auth", tmp_path / "dash") as url:
            async with browser() as b:
                page, response = await open_page(b, f"{url}/experiments/{exp}", expect_404=True)
                assert response.status == 404  # not requested yet: the page says so and follows the log
                p = page.page
                await p.wait_for_selector("#missing")
                model = coordinator_model(tmp_path / "work", tiny_model_dir)
                run = RunRequested(model=model, dataset="arc_easy", episodes=1, limit=4, policy="grid")
                await log.append(new_event(exp, run, producer="test", key="run"))

                await p.wait_for_selector("#summary #status", timeout=30_000)
                assert await p.locator("#missing").count() == 0
                # generous waits: on a loaded 2-core machine the baseline's latency alone took two minutes
                await p.wait_for_selector('#timeline tr[data-episode="1"]', timeout=300_000)
                await p.wait_for_selector('#chart[data-points="2"]', timeout=300_000)
                events = await wait_for(log, exp, finished, 120, [*procs.values()])
                await p.wait_for_selector("#status.status-completed", timeout=15_000)
                steps = await p.locator('#timeline tr[data-episode="1"] .steps li').all_inner_texts()
                assert steps and all("— done" in s for s in steps), steps
                assert any(" on quantization" in s for s in steps), "the step names the instance that ran it"
                assert await p.locator("#chart g.errorbar").count() >= 2
                assert page.errors == []
    finally:
        stop_agents(procs)
    assert events[-1].type == "experiment.completed", [e.type for e in events]
