"""An LLM as the compression expert, through any OpenAI-compatible chat-completions server.

The prompt carries the model's spec, the hardware, the objective, the Pareto front so far, this
experiment's history, the skill memory for the model family and the budget left. The answer must be
JSON of the `LLMAnswer` schema; an invalid answer is sent back with the validation error, and after
`llm_max_attempts` failures the episode is decided by the fallback policy, with an event saying so.
Every call is an `llm.consulted` event: the messages by hash, size and excerpt (the context grows
with the history; the event does not), the answer (cut to a bound), model, tokens, cost. The API key
is read by the client from OPENAI_API_KEY and appears nowhere else; the base URL is logged without
credentials and provider errors are scrubbed of key-like strings (shared/scrub.py).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from greenai.events import EventData
from greenai.events.experiment import EXCERPT_BYTES, LLMConsulted, PolicyFellBack, Step, digest_messages, excerpt
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.feasibility import infeasible
from greenai.services.coordinator.policies.base import Decision, Policy
from greenai.shared.config import Settings
from greenai.shared.scrub import scrub_text, scrub_url


class StepAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=40)
    method: str = Field(max_length=80)
    params: dict[str, Any] = Field(default_factory=dict)


class LLMAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(max_length=40, description="'compress', 'pipeline', 'end', or a step kind.")
    method: str | None = Field(default=None, max_length=80)
    params: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepAnswer] = Field(default_factory=list, description="For a pipeline, in order.")
    rationale: str = Field(min_length=1)

    def to_steps(self, offers: Offers) -> tuple[Step, ...]:
        """The answer's steps, each a method some live agent offers (else a ValueError naming them)."""
        if self.action == "end":
            return ()
        if self.steps:
            raw = [(s.kind, s.method, s.params) for s in self.steps]
        else:
            if not self.method:
                raise ValueError(f"action {self.action!r} needs a 'method' (or 'steps')")
            kinds = [m.kind for m in offers.methods if m.name == self.method]
            kind = self.action if self.action in kinds else (kinds[0] if len(kinds) == 1 else self.action)
            raw = [(kind, self.method, self.params)]
        for kind, method, _ in raw:
            if offers.get(kind, method) is None:
                offered = {k: [m.name for m in offers.of_kind(k)] for k in offers.kinds()}
                raise ValueError(f"no live agent offers {kind} method {method!r}; offered now: {offered}")
        return tuple(Step(kind=k, method=m, params=p) for k, m, p in raw)


SYSTEM = (
    "You are an expert in compressing large language models (quantization, pruning, recovery by fine-tuning "
    "or distillation). Each episode you choose ONE next experiment. Answer with a single JSON object and nothing "
    'else, of the form {"action": "compress"|"end", "steps": [{"kind": str, "method": str, "params": {...}}], '
    '"rationale": str}: one step, or a pipeline of steps run in order. Use only the methods listed under '
    '"methods" in the context (what the agents on the bus offer now), with their parameters. '
    "Do not repeat an experiment already in the history."
)


def method_list(offers: Offers) -> list[dict[str, Any]]:
    """The catalogue as the LLM sees it: kind, name, what it does, its parameters and useful values."""
    out = []
    for m in offers.methods:
        props = m.params_schema.get("properties", {})
        out.append({
            "kind": m.kind, "method": m.name, "stage": m.stage, "summary": m.summary,
            "params": {k: {"type": v.get("type"), "default": v.get("default")} for k, v in list(props.items())[:12]},
            "useful_values": m.search[:4],
            "families": m.families,
        })  # fmt: skip
    return out


def build_prompt(
    state: ExperimentState, skills: SkillMemory, hardware: dict[str, Any], offers: Offers
) -> list[dict[str, str]]:
    run, spec = state.run, state.spec
    assert run is not None
    history = [
        {
            "episode": ep.number,
            "steps": [s.model_dump() for s in ep.decision.steps],
            "status": ep.status,
            "accuracy": ep.evaluated.accuracy if ep.evaluated else None,
            "decode_ms_per_token": ep.evaluated.latency.decode_ms_per_token if ep.evaluated else None,
            "size_mib": round(ep.evaluated.size_bytes / 2**20, 1) if ep.evaluated else None,
            "failure": ep.failure.message[:200] if ep.failure else None,
        }
        for ep in sorted(state.episodes.values(), key=lambda e: e.number)
    ]
    base = state.baseline.result
    context = {
        "model": spec.model_dump() if spec else None,
        "hardware": hardware,
        "methods": method_list(offers),
        "objective": run.objective,
        "target_benchmark": run.dataset,
        "baseline": {
            "accuracy": base.accuracy,
            "decode_ms_per_token": base.latency.decode_ms_per_token,
            "size_mib": round(base.size_bytes / 2**20, 1),
        }
        if base
        else None,
        "history": history,
        "skill_memory": [s.model_dump() for s in skills.for_family(spec.family if spec else "")][:20],
        "episodes_left": run.episodes - state.decided,
    }
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Context:\n" + json.dumps(context, indent=1, default=str) + "\nYour JSON answer:"},
    ]


def hardware_summary() -> dict[str, Any]:
    import psutil
    import torch

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    return {"cpu_cores": os.cpu_count(), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "gpus": gpus}


def parse_answer(text: str, offers: Offers) -> tuple[LLMAnswer, tuple[Step, ...]]:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("the answer contains no JSON object")
    answer = LLMAnswer.model_validate(json.loads(text[start : end + 1]))
    return answer, answer.to_steps(offers)


class LLMPolicy(Policy):
    name = "llm"

    def __init__(self, settings: Settings, fallback: Policy) -> None:
        self.settings = settings
        self.fallback = fallback

    def decide(self, state: ExperimentState, skills: SkillMemory, offers: Offers) -> Decision:
        from openai import OpenAI

        episode = state.decided + 1
        client = OpenAI(
            base_url=self.settings.llm_base_url, api_key=os.environ.get("OPENAI_API_KEY", "not-needed"), timeout=120
        )
        messages = build_prompt(state, skills, hardware_summary(), offers)
        notes: list[EventData] = []
        last_error = ""
        for attempt in range(1, self.settings.llm_max_attempts + 1):
            t0 = time.perf_counter()
            text, usage, error = "", None, None
            try:
                response = client.chat.completions.create(  # type: ignore[call-overload]
                    model=self.settings.llm_model,
                    messages=messages,
                    response_format={"type": "json_object"},
                    temperature=0.2,
                    max_tokens=self.settings.llm_max_tokens,
                )
                text = response.choices[0].message.content or ""
                usage = response.usage
                answer, steps = parse_answer(text, offers)
                why_not = infeasible(steps, state.spec, offers)
                if why_not is not None:
                    raise ValueError(f"that configuration cannot run on this model: {why_not}")
            except (ValidationError, ValueError, json.JSONDecodeError) as exc:
                error = scrub_text(f"{type(exc).__name__}: {exc}", 1500)
            except Exception as exc:  # the server itself failed: no point asking again with a correction
                error = scrub_text(f"{type(exc).__name__}: {exc}", 1500)
                notes.append(self._note(episode, attempt, messages, text, error, usage, t0))
                last_error = error
                break
            notes.append(self._note(episode, attempt, messages, text, error, usage, t0))
            if error is None:
                return Decision(
                    "compress" if steps else "end",
                    steps,
                    f"llm ({self.settings.llm_model}): {answer.rationale}",
                    notes=tuple(notes),
                )
            last_error = error
            messages = [
                *messages,
                {"role": "assistant", "content": excerpt(text, EXCERPT_BYTES)},
                {
                    "role": "user",
                    "content": f"That answer was invalid ({error}). Reply with only the corrected JSON object.",
                },
            ]
        fallback = self.fallback.decide(state, skills, offers)
        notes.append(
            PolicyFellBack(
                episode=episode,
                from_policy=self.name,
                to_policy=self.fallback.name,
                reason=f"no valid answer in {len(notes)} attempt(s); last error: {last_error}"[:2000],
            )
        )
        return Decision(
            fallback.action,
            fallback.steps,
            f"fallback to {self.fallback.name}: {fallback.rationale}",
            search_point=fallback.search_point,
            search_space=fallback.search_space,
            notes=tuple(notes),
        )

    def _note(
        self,
        episode: int,
        attempt: int,
        messages: list[dict[str, str]],
        text: str,
        error: str | None,
        usage: Any,
        t0: float,
    ) -> LLMConsulted:
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        price = self.settings.llm_usd_per_1k_tokens
        cost = (
            round(price * ((prompt_tokens or 0) + (completion_tokens or 0)) / 1000, 6)
            if price is not None and prompt_tokens is not None
            else None
        )
        digests, whole = digest_messages(messages)
        return LLMConsulted(
            episode=episode,
            attempt=attempt,
            model=self.settings.llm_model[:512],
            base_url=scrub_url(self.settings.llm_base_url),
            messages=digests,
            messages_sent=len(messages),
            conversation_sha256=whole,
            answer=excerpt(text, EXCERPT_BYTES),
            answer_chars=len(text),
            valid=error is None,
            error=error,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            latency_s=round(time.perf_counter() - t0, 3),
        )
