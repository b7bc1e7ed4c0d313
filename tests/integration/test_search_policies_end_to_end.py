"""Each search policy drives a real experiment end to end: agents as OS processes, a real
nats-server, the tiny model, the `cpu-fast` space. Two experiments share one set of agents: TPE stands for
the optuna policies (NSGA-II and random differ only in the sampler, and are covered by the unit tests on
hand-built histories), the bandit for the policies of their own."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.experiment import EpisodeDecided, ExperimentCompleted, RunRequested, steps_key
from greenai.events.jobs import JobFailed
from greenai.events.results import EvaluateCompleted
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats
from tests.integration.helpers import (
    agent_env,
    coordinator_model,
    finished,
    host_paths_in,
    start_agent,
    stop_agents,
    wait_for,
)

pytestmark = pytest.mark.slow
POLICIES = ["tpe", "bandit"]


async def test_every_search_policy_runs_a_real_experiment(
    server: EmbeddedNats, log: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    env = agent_env(server.url, tmp_path / "work", data_dir)
    names = ("coordinator", "quantization", "pruning", "lora", "evaluation")
    procs: dict[str, subprocess.Popen[bytes]] = {n: start_agent(n, env, tmp_path / "logs") for n in names}
    model = coordinator_model(tmp_path / "work", tiny_model_dir)
    try:
        for policy in POLICIES:
            run = RunRequested(
                model=model, dataset="arc_easy", episodes=2, limit=2, policy=policy, space="cpu-fast",
                seed=3, calibration_samples=4, calibration_seq_len=32,
            )  # fmt: skip
            await log.append(new_event(f"pol-{policy}", run, producer="test", key="run"), expected_last_seq=0)
        histories = await asyncio.gather(
            *(wait_for(log, f"pol-{p}", finished, 900, list(procs.values())) for p in POLICIES)
        )
    finally:
        stop_agents(procs)
    # separate work dirs, nothing shared but NATS: the base model and every artifact came by content
    assert host_paths_in([e for h in histories for e in h], tmp_path) == []
    for name in ("quantization", "evaluation"):
        fetched = list((tmp_path / "work" / name / "cache" / "artifacts").glob("*.complete"))
        assert fetched, f"the {name} agent's cache started empty and was filled from the object store"
    for policy, events in zip(POLICIES, histories, strict=True):
        decisions = [e.data for e in events if isinstance(e.data, EpisodeDecided)]
        assert [d.policy for d in decisions] == [policy, policy], policy
        assert len({steps_key(tuple(d.steps)) for d in decisions}) == 2  # never the same configuration twice
        for d in decisions:  # the tiny model has 2 layers: dropping 2 or more is ruled out before it is tried
            assert d.steps[0].method != "layer_drop"
        done = [e.data for e in events if isinstance(e.data, ExperimentCompleted)]
        assert done and done[0].episodes_run == 2, policy
        outcomes = {e.data.episode for e in events if isinstance(e.data, EvaluateCompleted)}
        outcomes |= {e.data.episode for e in events if isinstance(e.data, JobFailed) and e.data.final}
        assert {1, 2} <= outcomes, policy  # every episode ended in a result or a clear failure
