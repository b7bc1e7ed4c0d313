"""The LLM policy's answers: the schema names only offered methods, a wrong answer is refused with
the reason, a fallback is labelled as such, recorded answers replay, and a server that refuses a
response format, answers 401 or answers garbage ends as a fallback with the reason and no key."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from greenai.cli.render import describe
from greenai.events import new_event
from greenai.events.experiment import EpisodeDecided, LLMConsulted, PolicyFellBack, Step, digest_messages
from greenai.projections.experiment import ExperimentState, fold_experiment
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.planner import plan
from greenai.services.coordinator.policies import llm_calls
from greenai.services.coordinator.policies.grid import GridPolicy
from greenai.services.coordinator.policies.llm import LLMPolicy, hardware_summary, parse_answer
from greenai.services.coordinator.policies.llm_calls import FORMAT_REFUSED, forms_to_try, response_format
from greenai.services.coordinator.policies.llm_prompt import answer_schema, build_prompt
from greenai.shared.config import Settings
from tests import factories as f

SECRET = "sk-testsecret0123456789abcdefghij"
GOOD = {"action": "compress", "steps": [{"kind": "prune", "method": "wanda", "params": {"sparsity": 0.3}}],
        "rationale": "gentle pruning first"}  # fmt: skip


def step_variants(schema: dict) -> list[dict]:
    """Every (kind, method, params) variant the schema allows at any position of any pipeline shape."""
    return [v for shape in schema["properties"]["steps"]["anyOf"] for pos in shape["prefixItems"] for v in pos["anyOf"]]


def ready_state(exp: str = "e") -> ExperimentState:
    """An experiment waiting for its first decision: run, spec, staged base model, measured baseline."""
    events = [f.run(exp, policy="llm"), f.spec(exp), f.staged(exp), f.evaluate_requested(exp, 0)]
    return fold_experiment(exp, [*events, f.evaluated(exp, 0, acc=0.6, ms=20.0, mem=300.0, size=4000)])


Reply = Callable[[dict], tuple[int, bytes]]  # request body -> (status, response body)


@pytest.fixture
def endpoint() -> Iterator[Callable[[Reply], str]]:
    """A real HTTP server on 127.0.0.1 answering chat completions as the test says (the adversary)."""
    servers: list[ThreadingHTTPServer] = []

    def start(reply: Reply) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, out = reply(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for s in servers:
        s.shutdown()


def completion(text: str) -> bytes:
    return json.dumps({
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }).encode()  # fmt: skip


def test_the_schema_names_only_offered_methods_that_fit_the_family() -> None:
    offers = f.agent_offers()
    schema = answer_schema(offers, f.SPEC)
    variants = step_variants(schema)
    pairs = {(v["properties"]["kind"]["enum"][0], v["properties"]["method"]["enum"][0]) for v in variants}
    assert pairs == {(m.kind, m.name) for m in offers.methods}  # llama: every method fits
    gpt2 = f.SPEC.model_copy(update={"family": "gpt2"})
    names = {v["properties"]["method"]["enum"][0] for v in step_variants(answer_schema(offers, gpt2))}
    assert "gptq" not in names and "awq" not in names and "wanda" in names
    wanda = next(v for v in variants if v["properties"]["method"]["enum"] == ["wanda"])
    assert wanda["properties"]["params"]["additionalProperties"] is False
    assert "sparsity" in wanda["properties"]["params"]["properties"]
    assert "title" not in json.dumps(schema) and "description" not in json.dumps(schema)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({**GOOD, "steps": [{"kind": "quantize", "method": "autoround_layer_drop", "params": {}}]}, "no live agent"),
        ({**GOOD, "steps": [{"kind": "prune", "method": "wanda", "params": {"bits": 4}}]}, "takes no parameter"),
        ({"action": "balanced", "rationale": "x"}, "needs a 'method'"),
        ({**GOOD, "steps": [GOOD["steps"][0], GOOD["steps"][0]]}, "each kind at most once"),
        ({**GOOD, "steps": [{"kind": "lora", "method": "lora", "params": {}}, GOOD["steps"][0]]}, "in the order"),
        ({"action": "compress", "steps": []}, "rationale"),
        ({**GOOD, "model": {"name": "echoed spec"}}, "Extra inputs"),
    ],
)
def test_a_wrong_answer_is_refused_with_the_reason(answer: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_answer(json.dumps(answer), f.agent_offers())


def test_a_control_character_in_the_rationale_is_taken() -> None:
    text = (
        json.dumps(GOOD)
        .replace("gentle pruning first", "gentle\tpruning\nfirst")
        .replace("\\t", "\t")
        .replace("\\n", "\n")
    )
    assert "\t" in text and "\n" in text
    answer, steps = parse_answer(text, f.agent_offers())
    assert steps[0].method == "wanda" and "\n" in answer.rationale


def test_truncated_json_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_answer(json.dumps(GOOD)[:-10], f.agent_offers())


def test_a_fallback_is_labelled_with_the_policy_that_decided() -> None:
    settings = Settings(llm_base_url="http://127.0.0.1:1/v1", llm_model="m", llm_max_attempts=1)
    state = ready_state()
    decision = LLMPolicy(settings, GridPolicy()).decide(state, SkillMemory(skills=[]), f.agent_offers())
    assert (
        decision.policy == "grid (fallback from llm)" and "fallback: the llm gave no valid answer" in decision.rationale
    )
    assert any(isinstance(n, PolicyFellBack) and n.to_policy == "grid" for n in decision.notes)
    planned = [p.data for p in plan(state, decision, "llm") if isinstance(p.data, EpisodeDecided)]
    assert planned and planned[0].policy == "grid (fallback from llm)"
    line = describe(new_event("e", planned[0], producer="t"))
    assert "decided by grid (fallback from llm)" in line and "decided by llm" not in line


def test_response_formats() -> None:
    schema = {"type": "object"}
    assert response_format("json_schema", schema) == {
        "type": "json_schema", "json_schema": {"name": "decision", "schema": schema, "strict": False}
    }  # fmt: skip
    assert response_format("json_object_schema", schema) == {"type": "json_object", "schema": schema}
    assert response_format("none", schema) is None
    assert forms_to_try("auto", "http://nowhere-remembered") == ["json_schema", "json_object_schema", "json_object"]
    with pytest.raises(ValueError, match="unknown llm_response_format"):
        forms_to_try("yaml", "x")


def test_auto_moves_to_the_form_the_server_takes(endpoint: Callable[[Reply], str]) -> None:
    """As llama-cpp-python's server does: HTTP 500 for OpenAI's json_schema, the schema in json_object taken."""
    seen: list[dict] = []

    def reply(body: dict) -> tuple[int, bytes]:
        seen.append(body["response_format"])
        if body["response_format"]["type"] == "json_schema":
            msg = "Input should be 'text' or 'json_object' ('body', 'response_format', 'type') input: 'json_schema'"
            return 500, json.dumps({"error": {"message": msg}}).encode()
        return 200, completion(json.dumps(GOOD))

    url = endpoint(reply)
    settings = Settings(llm_base_url=url, llm_model="m", llm_max_attempts=1)
    decision = LLMPolicy(settings, GridPolicy()).decide(ready_state(), SkillMemory(skills=[]), f.agent_offers())
    assert decision.policy is None and decision.steps[0].method == "wanda"
    calls = [n for n in decision.notes if isinstance(n, LLMConsulted)]
    assert [c.valid for c in calls] == [False, True] and (calls[0].error or "").startswith(FORMAT_REFUSED)
    assert seen[-1]["schema"]["properties"]["action"]["enum"] == ["compress", "end"]
    assert calls[1].prompt_tokens == 100 and calls[1].attempt == 1, "a refused format costs no attempt"
    assert llm_calls.forms_to_try("auto", url) == ["json_object_schema"], "remembered for this server"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (401, json.dumps({"error": {"message": f"Incorrect API key provided: {SECRET}"}}).encode(), "Authentication"),
        (200, b"<html>this is not json</html>", ""),
        (200, completion("I think you should quantize it, it will be fine."), "no JSON object"),
    ],
)
def test_a_bad_server_ends_as_a_fallback_with_the_reason(
    endpoint: Callable[[Reply], str], monkeypatch: pytest.MonkeyPatch, status: int, body: bytes, reason: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    url = endpoint(lambda _: (status, body))
    settings = Settings(llm_base_url=url, llm_model="m", llm_max_attempts=2, llm_response_format="json_schema")
    decision = LLMPolicy(settings, GridPolicy()).decide(ready_state(), SkillMemory(skills=[]), f.agent_offers())
    assert decision.action == "compress" and decision.policy == "grid (fallback from llm)"
    fell = [n for n in decision.notes if isinstance(n, PolicyFellBack)]
    assert fell and reason in fell[0].reason and fell[0].reason
    raw = b"".join(new_event("e", n, producer="t").encode() for n in decision.notes)
    assert SECRET.encode() not in raw


def test_recorded_answers_replay_without_a_server(tmp_path: Path) -> None:
    state = ready_state()
    offers = f.agent_offers()
    messages = build_prompt(state, SkillMemory(skills=[]), hardware_summary(), offers)
    digests, whole = digest_messages(messages)
    answer = json.dumps(GOOD)
    recorded = LLMConsulted(
        episode=1, attempt=1, model="m", base_url=None, messages=digests, messages_sent=2, conversation_sha256=whole,
        answer=answer, answer_chars=len(answer), valid=True, prompt_tokens=1000, completion_tokens=40, latency_s=2.5,
    )  # fmt: skip
    path = tmp_path / "answers.jsonl"
    path.write_text(new_event("e", recorded, producer="t").encode().decode() + "\n")
    settings = Settings(llm_base_url="http://127.0.0.1:1/v1", llm_model="m", llm_recorded=path)
    first = LLMPolicy(settings, GridPolicy()).decide(state, SkillMemory(skills=[]), offers)
    again = LLMPolicy(settings, GridPolicy()).decide(state, SkillMemory(skills=[]), offers)
    assert first.steps == again.steps and first.steps[0].method == "wanda" and first.policy is None
    call = first.notes[0]
    assert isinstance(call, LLMConsulted) and call.valid and call.base_url == "recorded:answers.jsonl"
    assert call.conversation_sha256 == whole and call.prompt_tokens == 1000
    later = ready_state()
    later.run = later.run.model_copy(update={"episodes": 7}) if later.run else None  # a different prompt
    missed = LLMPolicy(settings, GridPolicy()).decide(later, SkillMemory(skills=[]), offers)
    fell = [n for n in missed.notes if isinstance(n, PolicyFellBack)]
    assert missed.policy == "grid (fallback from llm)" and "holds no answer" in fell[0].reason


def test_in_the_cpu_fast_space_the_schema_allows_only_the_fast_grids() -> None:
    offers = f.agent_offers()
    variants = step_variants(answer_schema(offers, f.SPEC, "cpu-fast"))
    methods = {v["properties"]["method"]["enum"][0] for v in variants}
    assert methods == {m.name for m in offers.methods if m.fast_search}
    autoround = next(v for v in variants if v["properties"]["method"]["enum"] == ["autoround"])["properties"]["params"]
    assert autoround["properties"]["iters"] == {"enum": [0]} and autoround["required"] == [
        "bits",
        "group_size",
        "iters",
    ]
    wanda = {json.dumps(v) for v in variants if v["properties"]["method"]["enum"] == ["wanda"]}
    assert len(wanda) == 2, "one variant per fast grid: a sparsity, or a 2:4 pattern"


def test_a_conversation_asked_again_gets_the_next_recorded_answer(tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    digests, whole = digest_messages(messages)
    notes = [
        LLMConsulted(
            episode=1,
            attempt=1,
            model="m",
            messages=digests,
            messages_sent=2,
            conversation_sha256=whole,
            answer=text,
            answer_chars=len(text),
            valid=True,
            latency_s=1.0,
        )
        for text in ("first", "second")
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(new_event("e", n, producer="t").encode().decode() + "\n" for n in notes))
    rec = llm_calls.Recording(path)
    assert [rec.ask(messages).text for _ in range(3)] == ["first", "second", "second"]
    with pytest.raises(llm_calls.CallFailed, match="holds no answer"):
        rec.ask([*messages, {"role": "user", "content": "more"}])


def test_the_schema_allows_only_the_pipeline_shapes_of_the_search_space() -> None:
    steps = answer_schema(f.agent_offers(), f.SPEC)["properties"]["steps"]["anyOf"]
    shapes = [[pos["anyOf"][0]["properties"]["kind"]["enum"][0] for pos in s["prefixItems"]] for s in steps]
    assert sorted(shapes) == sorted([["prune"], ["quantize"], ["prune", "quantize"], ["prune", "lora"],
                                     ["quantize", "lora"], ["prune", "quantize", "lora"]])  # fmt: skip
    assert all(s["minItems"] == s["maxItems"] == len(s["prefixItems"]) for s in steps)


def test_an_answer_that_repeats_an_experiment_is_refused_and_retried(endpoint: Callable[[Reply], str]) -> None:
    step = GOOD["steps"][0]
    done = f.pipeline("e", 1, [Step(kind=step["kind"], method=step["method"], params=step["params"])])
    base = [f.run("e", policy="llm"), f.spec(), f.staged(), f.evaluate_requested("e", 0)]
    state = fold_experiment("e", [*base, f.evaluated("e", 0, acc=0.6, ms=20.0, mem=300.0, size=4000), done])
    asked: list[int] = []

    def reply(body: dict) -> tuple[int, bytes]:
        asked.append(len(body["messages"]))
        return 200, completion(json.dumps(GOOD))  # the same experiment, every time

    settings = Settings(llm_base_url=endpoint(reply), llm_model="m", llm_max_attempts=2, llm_response_format="none")
    decision = LLMPolicy(settings, GridPolicy()).decide(state, SkillMemory(skills=[]), f.agent_offers())
    calls = [n for n in decision.notes if isinstance(n, LLMConsulted)]
    assert [c.valid for c in calls] == [False, False] and "already in the history" in (calls[0].error or "")
    assert asked == [2, 4], "the retry carries the answer and the reason back"
    assert decision.policy == "grid (fallback from llm)"
