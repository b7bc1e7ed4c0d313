"""The LLM policy against a real schema-enforcing server on 127.0.0.1: llama-cpp-python's, on the
SmolLM2-135M GGUF, through the official `openai` client, driving two episodes of a real run; then the
same decisions again offline, from the recorded answers alone.

The policy detects the response format the server takes (it refuses OpenAI's `json_schema` with
HTTP 500; it takes llama.cpp's `json_object` + `schema`), so every answer is JSON of the schema: a
wrong answer can only be a wrong choice (an order, a configuration the model cannot run), refused
with its reason and retried. An episode the LLM could not decide is labelled with the fallback.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.experiment import EpisodeDecided, LLMConsulted, PolicyFellBack, RunRequested
from greenai.projections.experiment import fold_experiment
from greenai.projections.skills import skill_memory
from greenai.services.coordinator.catalogue import read_catalogue
from greenai.services.coordinator.policies.auto import get_policy
from greenai.services.coordinator.policies.llm import LLMPolicy
from greenai.services.coordinator.policies.llm_calls import FORMAT_REFUSED
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.llama_server import free_port, gguf_path, missing_modules, start, wait_ready
from greenai.shared.nats_server import EmbeddedNats
from tests.integration.helpers import agent_env, coordinator_model, finished, start_agent, stop_agents, wait_for

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m"


@pytest.fixture
def llm_server(tmp_path: Path) -> Iterator[str]:
    assert not missing_modules(), f"the [models] extra provides the server: missing {missing_modules()}"
    port = free_port()
    proc = start(gguf_path(MODEL), port, threads=1, log=tmp_path / "llama.log")
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(proc, url, 120)
    except Exception:
        proc.kill()
        raise AssertionError((tmp_path / "llama.log").read_text(errors="replace")[-3000:]) from None
    yield url
    proc.terminate()
    proc.wait(30)


async def test_schema_constrained_answers_decide_and_replay_offline(
    llm_server: str, server: EmbeddedNats, log: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    env = agent_env(
        server.url, tmp_path / "work", data_dir,
        GREENAI_LLM_BASE_URL=llm_server, GREENAI_LLM_MODEL=MODEL, GREENAI_LLM_MAX_TOKENS="256",
        GREENAI_LLM_MAX_ATTEMPTS="2", GREENAI_LLM_FALLBACK_POLICY="bandit", GREENAI_LLM_USD_PER_1K_TOKENS="0.001",
        OPENAI_API_KEY="sk-test-not-a-secret-but-must-not-leak",
    )  # fmt: skip
    names = ("coordinator", "quantization", "pruning", "lora", "evaluation")
    procs = {n: start_agent(n, env, tmp_path / "logs") for n in names}
    exp = "llm-test"
    try:
        model = coordinator_model(tmp_path / "work", tiny_model_dir)
        run = RunRequested(model=model, dataset="arc_easy", episodes=2, limit=4, policy="llm", space="cpu-fast")
        await log.append(new_event(exp, run, producer="test", key="run"))
        events = await wait_for(log, exp, finished, 900, list(procs.values()))
    except AssertionError as exc:
        calls = [e.data for e in (await log.read(exp)).envelopes if isinstance(e.data, LLMConsulted)]
        tail = (tmp_path / "llama.log").read_text(errors="replace")[-1500:]
        raise AssertionError(
            f"{exc}\nllm calls: {[(c.episode, c.latency_s, c.error) for c in calls]}\n{tail}"
        ) from None
    finally:
        stop_agents(procs, 150)  # a coordinator in the middle of an LLM call ends when the call does

    assert events[-1].type == "experiment.completed", [e.type for e in events]
    calls = [e.data for e in events if isinstance(e.data, LLMConsulted)]
    answers = [c for c in calls if not (c.error or "").startswith(FORMAT_REFUSED)]
    decisions = [e.data for e in events if isinstance(e.data, EpisodeDecided)]
    assert [d.episode for d in decisions] == [1, 2]
    assert calls[0].error and calls[0].error.startswith(FORMAT_REFUSED), "OpenAI's form first, refused by llama.cpp"
    assert len(calls) - len(answers) == 1, "the form that worked is remembered: refused once per process"
    for c in answers:
        assert c.model == MODEL and c.messages[0].role == "system" and c.base_url == llm_server
        if c.answer_chars:  # a call that got no answer at all (a timeout under load) has no tokens
            assert c.prompt_tokens and c.completion_tokens and c.cost_usd is not None
        # schema-constrained decoding: never malformed JSON, a missing field or an unoffered method
        for malformed in ("JSONDecodeError", "no JSON object", "Field required", "Extra inputs", "no live agent"):
            assert malformed not in (c.error or ""), c
    valid = sum(c.valid for c in answers)
    shown = [f"{c.episode}.{c.attempt} {c.latency_s} s {c.prompt_tokens}+{c.completion_tokens} tok "
             f"{'valid' if c.valid else c.error}" for c in answers]  # fmt: skip
    print(f"\nvalid answers: {valid}/{len(answers)}; " + "; ".join(shown))
    for d in decisions:
        fell_back = [e.data for e in events if isinstance(e.data, PolicyFellBack) and e.data.episode == d.episode]
        if any(c.valid for c in answers if c.episode == d.episode):
            assert d.policy == "llm" and d.rationale.startswith(f"llm ({MODEL})") and not fell_back
        else:
            assert fell_back and fell_back[0].to_policy == "bandit" and fell_back[0].reason
            assert d.policy == "bandit (fallback from llm)" and "fallback: the llm gave" in d.rationale
    raw = b"".join(e.encode() for e in events)
    assert b"sk-test-not-a-secret" not in raw, "the API key never reaches the log"

    # offline: the recorded answers alone reproduce every decision (no server: a closed port)
    recording = tmp_path / "answers.jsonl"
    recording.write_bytes(b"".join(e.encode() + b"\n" for e in events if isinstance(e.data, LLMConsulted)))
    settings = Settings(
        llm_base_url="http://127.0.0.1:1/v1", llm_model=MODEL, llm_max_attempts=2, llm_recorded=recording
    )
    catalogue = await read_catalogue(log)
    for d in decisions:
        first_note = next(
            i for i, e in enumerate(events)
            if isinstance(e.data, (LLMConsulted, EpisodeDecided)) and e.data.episode == d.episode
        )  # fmt: skip
        before = events[:first_note]
        state = fold_experiment(exp, before)
        offers = catalogue.live(datetime.now(UTC))
        replayed = LLMPolicy(settings, get_policy("bandit")).decide(state, skill_memory(before), offers)
        assert replayed.steps == tuple(d.steps) and (replayed.policy or "llm") == d.policy, d.episode
        hashes = [n.conversation_sha256 for n in replayed.notes if isinstance(n, LLMConsulted)]
        assert hashes == [c.conversation_sha256 for c in answers if c.episode == d.episode]
