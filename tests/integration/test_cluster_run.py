"""A short experiment on a 3-node loopback cluster whose stream leader is killed mid-run.

Every agent is its own process with its own work dir and NATS identity, so artifacts can only travel
through the replicated object store. The run completes, every job completes once, the evaluation
agent's cache was filled from the store, and `greenai pull` gives a folder that `from_pretrained` loads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.experiment import RunRequested, Step
from greenai.events.jobs import JobStarted
from greenai.events.results import StepCompleted
from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.auth import client_options, init_auth
from greenai.shared.eventstore import EventStore, StreamLimits
from greenai.shared.nats_cluster import LocalCluster
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


async def test_a_run_survives_the_loss_of_its_stream_leader(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    auth = init_auth(tmp_path / "auth")
    cluster = LocalCluster(tmp_path / "cluster", 3, extra_config=auth.server_conf.read_text()).start()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    log = await EventStore.connect(
        cluster.url, "GREENAI_EVENTS", options=client_options(auth.seed("admin")), limits=StreamLimits(replicas=3)
    )
    try:
        await ArtifactStore(log.js, "greenai-artifacts", tmp_path / "admin-cache", replicas=3).ensure_bucket()
        env = agent_env(cluster.url, tmp_path / "work", data_dir, GREENAI_REPLICAS="3")
        procs = {n: start_agent(n, env, tmp_path / "logs") for n in ("coordinator", "quantization", "evaluation")}
        exp = "cluster-run"
        model = coordinator_model(tmp_path / "work", tiny_model_dir)
        plan = [[Step(kind="quantize", method="bnb_int8")]]
        run = RunRequested(model=model, dataset="arc_easy", episodes=1, limit=2, policy="plan", plan=plan)
        await log.append(new_event(exp, run, producer="test", key="run"))
        await wait_for(
            log,
            exp,
            lambda ev: any(isinstance(e.data, JobStarted) and e.data.kind == "quantize" for e in ev),
            240,
            list(procs.values()),
        )
        leader = cluster.stream_leader("GREENAI_EVENTS")
        assert leader is not None
        cluster.node(leader).kill()
        events = await wait_for(log, exp, finished, 420, list(procs.values()))
        assert events[-1].type == "experiment.completed", [e.type for e in events]
        completions = Counter(e.data.job_id for e in events if isinstance(e.data, StepCompleted))
        assert completions and set(completions.values()) == {1}
        assert host_paths_in(events, tmp_path) == []
        assert list((tmp_path / "work" / "evaluation" / "cache" / "artifacts").glob("*.complete"))

        pulled = tmp_path / "pulled"
        pull_env = {**os.environ, "GREENAI_NATS_URL": cluster.url, "GREENAI_AUTH_DIR": str(auth.folder),
                    "GREENAI_WORK_DIR": str(tmp_path / "puller")}  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "greenai", "pull", exp, "1", str(pulled)],
            env=pull_env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        from transformers import AutoModelForCausalLM

        AutoModelForCausalLM.from_pretrained(pulled)  # loads, from the log and the store alone
    finally:
        if procs:
            stop_agents(procs, 30)
        await log.close()
        cluster.stop()
