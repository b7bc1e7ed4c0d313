"""A new kind of agent joins a running experiment by announcing itself: the third-party example
(`examples/cast_agent.py`, kind `cast`) is started mid-run in its own process, under its own NATS
identity, and the coordinator — whose code names no method — decides it, runs it and evaluates it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.capabilities import AgentAnnounced
from greenai.events.experiment import EpisodeDecided, RunRequested
from greenai.events.results import EvaluateCompleted, step_completion_class
from greenai.projections.pareto import pareto_front
from greenai.shared.auth import AuthFiles, add_role, step_agent_types
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats
from tests.conftest import REPO
from tests.integration.helpers import agent_env, coordinator_model, finished, start_agent, stop_agents, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def auth(tmp_path: Path) -> AuthFiles:
    """The built-in roles and one more, `cast`, made the way a user adds an agent (greenai auth add-role)."""
    return add_role(tmp_path / "auth", "cast", step_agent_types("cast"))


async def test_an_agent_started_mid_run_is_used_from_the_next_decision(
    server: EmbeddedNats, log: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    env = agent_env(server.url, tmp_path / "work", data_dir)
    logs = tmp_path / "logs"
    procs = {n: start_agent(n, env, logs) for n in ("coordinator", "quantization", "evaluation")}
    exp = "joins"
    try:
        model = coordinator_model(tmp_path / "work", tiny_model_dir)
        run = RunRequested(model=model, dataset="arc_easy", episodes=3, limit=4, policy="grid")
        await log.append(new_event(exp, run, producer="test", key="run"))
        await wait_for(log, exp, lambda ev: any(isinstance(e.data, EpisodeDecided) for e in ev), 240, [*procs.values()])
        auth_dir = tmp_path / "auth"
        cast_env = {
            **env, "GREENAI_WORK_DIR": str(tmp_path / "work" / "cast"),
            "GREENAI_CREDENTIALS": str(auth_dir / "cast.nk"), "GREENAI_AUTH_DIR": str(auth_dir / "none"),
        }  # fmt: skip
        with open(logs / "cast.log", "wb") as out:
            procs["cast"] = subprocess.Popen(
                [sys.executable, str(REPO / "examples" / "cast_agent.py")], env=cast_env, stdout=out, stderr=out
            )
        events = await wait_for(log, exp, finished, 600, [*procs.values()])
    finally:
        stop_agents(procs)
    assert events[-1].type == "experiment.completed", [e.type for e in events]
    announced = [e async for e in log.read_everything("greenai.evt._agents-cast.agent.announced")]
    assert announced, "the cast agent announced itself"
    joined = min(e.envelope.time for e in announced)
    later = [e for e in events if isinstance(e.data, EpisodeDecided) and e.time > joined]
    assert later, "a decision came after the agent joined"
    first = later[0].data
    assert isinstance(first, EpisodeDecided)
    assert [(s.kind, s.method) for s in first.steps] == [("cast", "bf16")], first  # its preset ranks first
    cast_done = [e.data for e in events if isinstance(e.data, step_completion_class("cast"))]
    assert len(cast_done) == 1 and cast_done[0].episode == first.episode
    evaluated = [e.data for e in events if isinstance(e.data, EvaluateCompleted) and e.data.episode == first.episode]
    assert evaluated and evaluated[0].size_bytes < 0.6 * next(
        e.data.size_bytes for e in events if isinstance(e.data, EvaluateCompleted) and e.data.episode == 0
    ), "bfloat16 weights: about half the float32 size"
    front = pareto_front(events)
    assert any(c.episode == first.episode and c.method == "bf16" for c in front.candidates)
    assert all(isinstance(e.envelope.data, AgentAnnounced) for e in announced)
