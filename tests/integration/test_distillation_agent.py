"""The distillation agent as its own process: a prune → distil plan runs through it, and a SIGKILL in
the middle of its job loses nothing and repeats nothing.

The coordinator has no code for distillation: the step goes out as a generic `distill.requested`,
the agent reads the experiment's `model.staged` from the log for its teacher and fetches both models
from the object store by content.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from greenai.cli.agents import stop_all
from greenai.events import Envelope, new_event
from greenai.events.capabilities import AgentAnnounced
from greenai.events.experiment import RunRequested, Step
from greenai.events.jobs import JobStarted
from greenai.events.results import EvaluateCompleted, PruneCompleted, StepCompleted, step_completion_class
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats
from tests.integration.helpers import (
    agent_env,
    coordinator_model,
    finished,
    host_paths_in,
    start_agent,
    wait_for,
)

pytestmark = pytest.mark.slow

AGENTS = ("coordinator", "pruning", "distillation", "evaluation")
ACK_WAIT_S = 4  # tests.integration.helpers.agent_env


def of_type(events: list[Envelope], cls: type) -> list[Any]:
    return [e.data for e in events if isinstance(e.data, cls)]


def plan(kd: dict[str, Any]) -> list[list[Step]]:
    return [
        [Step(kind="prune", method="wanda", params={"sparsity": 0.5}), Step(kind="distill", method="kd", params=kd)]
    ]


async def start_run(log: EventStore, exp: str, tmp_path: Path, model_dir: Path, kd: dict[str, Any]) -> None:
    model = coordinator_model(tmp_path / "work", model_dir)
    run = RunRequested(model=model, dataset="arc_easy", episodes=1, limit=4, policy="plan", plan=plan(kd))
    await log.append(new_event(exp, run, producer="test", key="run"))


def distilled(events: list[Envelope]) -> list[StepCompleted]:
    return of_type(events, step_completion_class("distill"))


async def test_a_prune_then_distil_plan_completes_through_the_distillation_agent(
    server: EmbeddedNats, log: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    env = agent_env(server.url, tmp_path / "work", data_dir)
    procs = {n: start_agent(n, env, tmp_path / "logs") for n in AGENTS}
    exp = "distil-plan"
    try:
        await start_run(log, exp, tmp_path, tiny_model_dir, {"steps": 4, "batch_size": 2, "seq_len": 32})
        events = await wait_for(log, exp, finished, 600, list(procs.values()))
    finally:
        stop_all(list(procs.values()), 30)  # kills what ignores SIGTERM: an evaluation mid-job

    assert events[-1].type == "experiment.completed", [e.type for e in events]
    assert host_paths_in(events, tmp_path) == []
    (pruned,) = of_type(events, PruneCompleted)
    (done,) = distilled(events)
    assert done.step == 1 and done.method == "kd" and done.params["steps"] == 4
    assert done.metrics["masked_zeros"] > 0, "the student came with Wanda's zeros and kept them"
    assert done.artifact.sha256 != pruned.artifact.sha256
    evaluated = [d for d in of_type(events, EvaluateCompleted) if d.episode == 1]
    assert evaluated, "the distilled model was evaluated"
    fetched = list((tmp_path / "work" / "distillation" / "cache" / "artifacts").glob("*.complete"))
    assert len(fetched) >= 2, "student and teacher both came from the object store"
    announced = [e async for e in log.read_everything("greenai.evt._agents-distillation.agent.announced")]
    assert announced and all(isinstance(e.envelope.data, AgentAnnounced) for e in announced)
    (offer,) = announced[0].envelope.data.methods
    assert offer.kind == "distill" and offer.stage == "recover"


async def test_a_distillation_agent_killed_mid_job_is_redelivered_and_completes_once(
    server: EmbeddedNats, log: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    env = agent_env(server.url, tmp_path / "work", data_dir)
    logs = tmp_path / "logs"
    procs = {n: start_agent(n, env, logs) for n in AGENTS}
    exp = "distil-kill"
    job_id = f"{exp}-ep1-s1-distill"
    try:
        await start_run(log, exp, tmp_path, tiny_model_dir, {"steps": 60, "batch_size": 2, "seq_len": 32})
        await wait_for(
            log, exp, lambda ev: any(d.job_id == job_id for d in of_type(ev, JobStarted)), 600, list(procs.values()),
        )  # fmt: skip
        procs["distillation"].send_signal(signal.SIGKILL)
        procs["distillation"].wait()
        before_restart = (await log.read(exp)).envelopes
        procs["distillation"] = start_agent("distillation", env, logs)
        await wait_for(log, exp, lambda ev: bool(distilled(ev)), 600, list(procs.values()))
        await asyncio.sleep(3 * ACK_WAIT_S)  # long enough for any second delivery to be taken and acted on
        events = (await log.read(exp)).envelopes
    finally:
        stop_all(list(procs.values()), 30)  # kills what ignores SIGTERM: an evaluation mid-job

    assert not distilled(before_restart), "the kill came in the middle of the job"
    starts = [d for d in of_type(events, JobStarted) if d.job_id == job_id]
    assert len(starts) >= 2 and {s.attempt for s in starts} >= {1, 2}
    assert Counter(d.job_id for d in distilled(events)) == {job_id: 1}
    assert len(of_type(events, PruneCompleted)) == 1, "the pruning step before it ran once"
