"""Every agent as its own OS process against a real nats-server: crashes, restarts, bad input.

The model is a tiny random Llama (a local folder), so a whole experiment takes about a minute;
every code path (JetStream consumers, child processes, AutoRound, lm-eval) is the real one.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from greenai.events import Envelope, new_event
from greenai.events.experiment import EpisodeDecided, RunRequested
from greenai.events.jobs import EventRejected, JobStarted
from greenai.events.results import QuantizeCompleted
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


def of_type(events: list[Envelope], cls: type) -> list:
    return [e.data for e in events if isinstance(e.data, cls)]


async def test_crashes_restarts_and_garbage_lose_nothing_and_repeat_nothing(
    server: EmbeddedNats, log: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    env = agent_env(server.url, tmp_path / "work", data_dir)
    logs = tmp_path / "logs"
    procs: dict[str, subprocess.Popen[bytes]] = {
        n: start_agent(n, env, logs) for n in ("coordinator", "quantization", "evaluation")
    }
    exp = "proc-test"
    try:
        # Garbage on the subjects of two agents, before any real work.
        await log.js.publish(f"greenai.evt.{exp}.quantize.requested", b"\x00 definitely not json", stream=log.stream)
        await log.js.publish(
            f"greenai.evt.{exp}.run.requested", b'{"type": "run.requested", "version": 1}', stream=log.stream
        )

        model = coordinator_model(tmp_path / "work", tiny_model_dir)
        run = RunRequested(model=model, dataset="arc_easy", episodes=2, limit=4)
        await log.append(new_event(exp, run, producer="test", key="run"), expected_last_seq=None)

        # 1. SIGKILL the quantization agent in the middle of its first job.
        await wait_for(
            log,
            exp,
            lambda ev: any(isinstance(e.data, JobStarted) and e.data.kind == "quantize" for e in ev),
            120,
            list(procs.values()),
        )
        procs["quantization"].send_signal(signal.SIGKILL)
        procs["quantization"].wait()
        procs["quantization"] = start_agent("quantization", env, logs)

        # 2. SIGKILL the coordinator once the first result is in, while it reacts to it.
        await wait_for(log, exp, lambda ev: bool(of_type(ev, QuantizeCompleted)), 180, list(procs.values()))
        procs["coordinator"].send_signal(signal.SIGKILL)
        procs["coordinator"].wait()
        procs["coordinator"] = start_agent("coordinator", env, logs)

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

    # The killed job was redelivered and completed exactly once.
    first_job = f"{exp}-ep1-s0-quantize"
    starts = [d for d in of_type(events, JobStarted) if d.job_id == first_job]
    assert len(starts) >= 2 and {s.attempt for s in starts} >= {1, 2}
    assert Counter(d.job_id for d in of_type(events, QuantizeCompleted)) == {first_job: 1, f"{exp}-ep2-s0-quantize": 1}

    # The restarted coordinator decided nothing twice.
    decisions = of_type(events, EpisodeDecided)
    assert [d.episode for d in decisions] == [1, 2]
    keyed = [e for e in events if e.producer.startswith("coordinator")]
    assert len({(e.type, getattr(e.data, "episode", None)) for e in keyed}) == len(keyed)
    assert len({e.event_id for e in events}) == len(events)

    # Both malformed messages became events; the agents kept serving.
    rejected = of_type(events, EventRejected)
    assert {r.agent for r in rejected} == {"quantization", "coordinator"}
    assert all(r.subject.startswith(f"greenai.evt.{exp}.") for r in rejected)
    assert len(of_type(events, type(events[-1].data))) == 1
