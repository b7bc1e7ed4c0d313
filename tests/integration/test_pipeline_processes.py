"""A prune → quantize → QLoRA pipeline across five agent processes, interrupted between steps.

The quantization agent is not running at first, so the pipeline stops after its pruning step.
Then the coordinator and the pruning agent are killed with SIGKILL, every agent is started fresh,
and the pipeline must resume at the quantization step, never repeating the pruning.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from greenai.events import Envelope, new_event
from greenai.events.experiment import RunRequested, Step
from greenai.events.jobs import JobStarted, StepRequested
from greenai.events.results import EvaluateCompleted, LoraCompleted, PruneCompleted, QuantizeCompleted
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


def types(events: list[Envelope], cls: type) -> list:
    return [e.data for e in events if isinstance(e.data, cls)]


async def test_pipeline_resumes_after_a_crash_between_steps(
    server: EmbeddedNats, log: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    env = agent_env(server.url, tmp_path / "work", data_dir)
    logs = tmp_path / "logs"
    procs: dict[str, subprocess.Popen[bytes]] = {
        n: start_agent(n, env, logs) for n in ("coordinator", "pruning", "lora", "evaluation")
    }
    exp = "pipeline-test"
    plan = [
        [
            Step(kind="prune", method="wanda", params={"sparsity": 0.5}),
            Step(kind="quantize", method="bnb_4bit", params={"quant_type": "nf4"}),
            Step(kind="lora", method="qlora", params={"steps": 3, "batch_size": 2, "seq_len": 32}),
        ]
    ]
    model = coordinator_model(tmp_path / "work", tiny_model_dir)
    run = RunRequested(model=model, dataset="arc_easy", episodes=1, limit=4, policy="plan", plan=plan)
    try:
        await log.append(new_event(exp, run, producer="test", key="run"))
        await wait_for(
            log,
            exp,
            lambda ev: any(isinstance(e.data, StepRequested) and e.data.step == 1 for e in ev),
            180,
            list(procs.values()),
        )
        for name in ("coordinator", "pruning"):
            procs[name].send_signal(signal.SIGKILL)
            procs[name].wait()
        for name in ("coordinator", "pruning", "quantization"):
            procs[name] = start_agent(name, env, logs)
        events = await wait_for(
            log,
            exp,
            finished,
            400,
            list(procs.values()),
        )
    finally:
        stop_agents(procs, 20)

    assert events[-1].type == "experiment.completed", [e.type for e in events]
    # separate work dirs, nothing shared but NATS: artifacts came through the object store, by content
    assert host_paths_in(events, tmp_path) == []
    fetched = list((tmp_path / "work" / "evaluation" / "cache" / "artifacts").glob("*.complete"))
    assert len(fetched) >= 2, "the evaluation agent fetched the base model and the artifacts from the store"
    prune_starts = [d for d in types(events, JobStarted) if d.kind == "prune"]
    assert len(prune_starts) == 1, "the finished pruning step never ran again"
    assert len(types(events, PruneCompleted)) == 1
    assert len(types(events, QuantizeCompleted)) == 1
    (lora,) = types(events, LoraCompleted)
    assert lora.metrics["kept_as"] == "adapter"
    steps = {(d.episode, d.step) for d in types(events, StepRequested)}
    assert steps == {(1, 0), (1, 1), (1, 2)}
    assert Counter(type(d).__name__ for d in types(events, StepRequested)) == {
        "PruneRequested": 1, "QuantizeRequested": 1, "LoraRequested": 1,
    }  # fmt: skip
    # each step consumed the previous step's artifact, and the evaluation the last one
    requests = sorted(types(events, StepRequested), key=lambda r: r.step)
    completions = {d.step: d for d in types(events, PruneCompleted) + types(events, QuantizeCompleted) + [lora]}
    assert requests[1].source.artifact == completions[0].artifact
    assert requests[2].source.artifact == completions[1].artifact
    final = [d for d in types(events, EvaluateCompleted) if d.episode == 1]
    assert len(final) == 1
