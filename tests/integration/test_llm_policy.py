"""The LLM policy against a real OpenAI-compatible server on 127.0.0.1: `transformers serve` with
SmolLM2-135M-Instruct, through the official `openai` client, driving two episodes of a real run.

A 135M model rarely writes valid JSON for this prompt, which is the point here: the test shows
every answer recorded as an event, invalid ones retried with the validation error, and the
episode decided by the fallback policy with an event that says so.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.experiment import EpisodeDecided, LLMConsulted, PolicyFellBack, RunRequested
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats
from tests.integration.helpers import agent_env, finished, start_agent, stop_agents, wait_for

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def llm_server(smollm2_dir: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    assert exe, "the transformers CLI is part of the install"
    port = free_port()
    model_id = str(smollm2_dir)
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [exe, "serve", model_id, "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from None
            time.sleep(1)
    yield f"{url}/v1", model_id
    proc.terminate()
    proc.wait(30)


async def test_two_llm_episodes_with_validation_retry_and_fallback(
    llm_server: tuple[str, str],
    server: EmbeddedNats,
    log: EventStore,
    tiny_model_dir: Path,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    base_url, model_id = llm_server
    env = agent_env(
        server.url, tmp_path / "work", data_dir,
        GREENAI_LLM_BASE_URL=base_url, GREENAI_LLM_MODEL=model_id, GREENAI_LLM_MAX_TOKENS="48",
        GREENAI_LLM_MAX_ATTEMPTS="2", GREENAI_LLM_FALLBACK_POLICY="bandit", GREENAI_LLM_USD_PER_1K_TOKENS="0.001",
        OPENAI_API_KEY="sk-test-not-a-secret-but-must-not-leak",
    )  # fmt: skip
    names = ("coordinator", "quantization", "pruning", "lora", "evaluation")
    procs = {n: start_agent(n, env, tmp_path / "logs") for n in names}
    exp = "llm-test"
    run = RunRequested(model=str(tiny_model_dir), dataset="arc_easy", episodes=2, limit=4, policy="llm")
    try:
        await log.append(new_event(exp, run, producer="test", key="run"))
        events = await wait_for(
            log,
            exp,
            finished,
            900,
            list(procs.values()),
        )
    finally:
        stop_agents(procs, 30)

    assert events[-1].type == "experiment.completed", [e.type for e in events]
    calls = [e.data for e in events if isinstance(e.data, LLMConsulted)]
    decisions = [e.data for e in events if isinstance(e.data, EpisodeDecided)]
    assert [d.episode for d in decisions] == [1, 2]
    assert {c.episode for c in calls} == {1, 2}, "the LLM was consulted for both episodes"
    for c in calls:
        assert c.model == model_id and c.messages[0].role == "system"
        assert c.valid or c.error  # an invalid answer says why
        assert c.prompt_tokens and c.completion_tokens and c.cost_usd is not None
    retried = [c for c in calls if c.attempt == 2]
    if retried:  # a retry carries the validation error back to the model
        assert "invalid" in retried[0].messages[-1].excerpt
    for n in (1, 2):
        episode_calls = [c for c in calls if c.episode == n]
        decision = decisions[n - 1]
        fell_back = [e.data for e in events if isinstance(e.data, PolicyFellBack) and e.data.episode == n]
        if any(c.valid for c in episode_calls):
            assert decision.rationale.startswith("llm (")
        else:
            assert len(episode_calls) == 2 and fell_back and fell_back[0].to_policy == "bandit"
            assert decision.rationale.startswith("fallback to bandit")
    raw = b"".join(e.encode() for e in events)
    assert b"sk-test-not-a-secret" not in raw, "the API key never reaches the log"
