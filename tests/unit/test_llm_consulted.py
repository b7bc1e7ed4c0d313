"""`llm.consulted` stays bounded whatever the history, keeps no credentials, and old (version 1)
events still read, as version 2."""

from __future__ import annotations

import hashlib
import json
import socket
from datetime import UTC, datetime

import pytest

from greenai.events import decode, new_event
from greenai.events.experiment import EXCERPT_BYTES, LLMConsulted
from greenai.projections.experiment import fold_experiment
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.policies.grid import GridPolicy
from greenai.services.coordinator.policies.llm import LLMPolicy
from greenai.services.coordinator.policies.llm_prompt import SYSTEM, build_prompt
from greenai.shared.config import Settings
from tests import factories as f

SECRET = "sk-testsecret0123456789abcdefghij"


def long_history(episodes: int = 1000) -> list:
    events = [f.run("long", episodes=episodes, policy="llm"), f.spec("long")]
    for n in range(1, episodes + 1):
        events += [f.decided("long", n, params={"bits": 4, "group_size": 64, "note": f"trial {n}"})]
        events += [f.evaluated("long", n, acc=0.5, ms=10.0 + n, mem=100.0, size=1000 + n)]
    return events


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_the_prompt_stays_bounded_as_the_history_grows() -> None:
    sizes = {}
    for n in (10, 100, 1000):
        state = fold_experiment("long", long_history(n))
        messages = build_prompt(state, SkillMemory(skills=[]), {"cpu_cores": 2}, f.agent_offers())
        sizes[n] = len(messages[1]["content"].encode())
        assert "PARETO FRONT" in messages[1]["content"] and f"ep{n} " in messages[1]["content"]
    print("prompt bytes at 10, 100, 1,000 episodes:", ", ".join(f"{v:,}" for v in sizes.values()))
    assert sizes[1000] < 12_000 and sizes[1000] < 1.2 * sizes[10], sizes
    assert "episodes 1-992, summarised" in messages[1]["content"], "older episodes are summarised"


def test_a_huge_conversation_gives_a_bounded_event() -> None:
    state = fold_experiment("long", long_history(50))
    messages = build_prompt(state, SkillMemory(skills=[]), {"cpu_cores": 2}, f.agent_offers())
    messages[1]["content"] += "z" * 200_000  # as a context that had grown would be
    policy = LLMPolicy(Settings(llm_base_url="http://127.0.0.1:1/v1", llm_model="m"), GridPolicy())
    retry = [*messages, {"role": "assistant", "content": "x" * 50_000}, {"role": "user", "content": "fix it"}]
    note = policy._note(1000, 2, retry, "y" * 100_000, "ValueError: nope", None, 0.0)
    size = len(new_event("long", note, producer="t").encode())
    assert size < 40_000
    assert note.messages[0].role == "system" and note.messages[0].excerpt == ""
    assert note.messages[0].sha256 == hashlib.sha256(SYSTEM.encode()).hexdigest()
    assert note.messages[1].chars == len(messages[1]["content"]) and note.messages[1].truncated
    assert len(note.messages[1].excerpt.encode()) <= EXCERPT_BYTES
    assert note.messages[-1].excerpt == "fix it" and note.messages_sent == 4
    assert note.answer_chars == 100_000 and len(note.answer) == EXCERPT_BYTES


def test_credentials_never_reach_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real call to a closed port: the provider error and the URL go into the event scrubbed."""
    url = f"http://alice:{SECRET}@127.0.0.1:{closed_port()}/v1?api_key={SECRET}"
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # the key the client sends, as in production
    settings = Settings(llm_base_url=url, llm_model="m", llm_max_attempts=1)
    state = fold_experiment("e", [f.run(policy="llm"), f.spec()])
    decision = LLMPolicy(settings, GridPolicy()).decide(state, SkillMemory(skills=[]), f.agent_offers())
    raw = b"".join(new_event("e", note, producer="t").encode() for note in decision.notes)
    assert SECRET.encode() not in raw and b"alice" not in raw
    call = decision.notes[0]
    assert isinstance(call, LLMConsulted) and not call.valid and call.error
    assert call.base_url is not None and call.base_url.startswith("http://127.0.0.1:") and "?" not in call.base_url


def test_version_1_reads_as_version_2_without_its_secrets() -> None:
    v1 = {
        "episode": 1, "attempt": 1, "model": "m", "base_url": f"https://bob:{SECRET}@llm.example/v1?key={SECRET}",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Context: " + "z" * 20_000}],
        "answer": "{}", "valid": False, "error": f"AuthenticationError: bad key {SECRET}", "latency_s": 0.1,
    }  # fmt: skip
    raw = json.dumps({
        "event_id": "00000000-0000-0000-0000-000000000001", "experiment_id": "e", "type": "llm.consulted",
        "version": 1, "time": datetime.now(UTC).isoformat(), "producer": "old", "data": v1,
    })  # fmt: skip
    env = decode(raw)
    assert env.version == 2 and isinstance(env.data, LLMConsulted)
    assert env.data.base_url == "https://llm.example/v1"
    assert SECRET not in env.encode().decode()
    assert env.data.messages[1].chars == len(v1["messages"][1]["content"])  # type: ignore[index]
