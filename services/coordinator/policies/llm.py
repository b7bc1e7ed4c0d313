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
from greenai.events.experiment import (
    EXCERPT_BYTES,
    LLMConsulted,
    PolicyFellBack,
    Step,
    digest_messages,
    excerpt,
    steps_key,
)
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.feasibility import infeasible
from greenai.services.coordinator.policies.base import Decision, Policy
from greenai.services.coordinator.policies.llm_calls import CallFailed, Refusal, Reply, api_key, ask_server, recording
from greenai.services.coordinator.policies.llm_prompt import answer_schema, build_prompt
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
        for kind, method, params in raw:
            offer = offers.get(kind, method)
            if offer is None:
                offered = {k: [m.name for m in offers.of_kind(k)] for k in offers.kinds()}
                raise ValueError(f"no live agent offers {kind} method {method!r}; offered now: {offered}")
            known = offer.params_schema.get("properties", {})
            unknown = sorted(set(params) - set(known))
            if unknown and offer.params_schema.get("additionalProperties") is False:
                raise ValueError(f"{method} takes no parameter(s) {unknown}; its parameters: {sorted(known)}")
        order = offers.kinds()
        kinds = [k for k, _, _ in raw]
        if len(set(kinds)) < len(kinds) or kinds != sorted(kinds, key=order.index):
            raise ValueError(f"a pipeline uses each kind at most once, in the order {order}; got {kinds}")
        return tuple(Step(kind=k, method=m, params=p) for k, m, p in raw)


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
    # strict=False: a raw control character inside a string (a tab, a newline in the rationale) is not
    # worth a retry; llama.cpp's grammar let one through in a real run
    answer = LLMAnswer.model_validate(json.loads(text[start : end + 1], strict=False))
    return answer, answer.to_steps(offers)


class LLMPolicy(Policy):
    name = "llm"

    def __init__(self, settings: Settings, fallback: Policy) -> None:
        self.settings = settings
        self.fallback = fallback

    def _source(self) -> str:
        recorded = self.settings.llm_recorded
        return f"recorded:{recorded.name}" if recorded is not None else scrub_url(self.settings.llm_base_url) or ""

    def decide(self, state: ExperimentState, skills: SkillMemory, offers: Offers) -> Decision:
        episode = state.decided + 1
        messages = build_prompt(state, skills, hardware_summary(), offers)
        schema = answer_schema(offers, state.spec, state.run.space if state.run else "full")
        notes: list[EventData] = []
        last_error = ""
        attempts = 0
        for attempt in range(1, self.settings.llm_max_attempts + 1):
            attempts = attempt
            t0 = time.perf_counter()
            refusals: list[Refusal] = []
            try:
                reply = self._ask(messages, schema, refusals)
            except CallFailed as exc:  # no answer at all: no point asking again with a correction
                last_error = scrub_text(str(exc), 1500)
                notes += self._refused(episode, attempt, messages, refusals)
                notes.append(self._note(episode, attempt, messages, "", last_error, None, self._since(t0, refusals)))
                break
            notes += self._refused(episode, attempt, messages, refusals)
            error = None
            try:
                answer, steps = parse_answer(reply.text, offers)
                why_not = infeasible(steps, state.spec, offers)
                if why_not is not None:
                    raise ValueError(f"that configuration cannot run on this model: {why_not}")
                if steps and steps_key(steps) in state.tried_keys():
                    raise ValueError("that configuration is already in the history: choose one not tried yet")
            except (ValidationError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
                error = scrub_text(f"{type(exc).__name__}: {exc}", 1500)
            notes.append(self._note(episode, attempt, messages, reply.text, error, reply, self._since(t0, refusals)))
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
                {"role": "assistant", "content": excerpt(reply.text, EXCERPT_BYTES)},
                {
                    "role": "user",
                    "content": f"That answer was invalid ({error}). Reply with only the corrected JSON object.",
                },
            ]
        return self._fall_back(state, skills, offers, notes, attempts, last_error)

    def _ask(self, messages: list[dict[str, str]], schema: dict[str, Any], refusals: list[Refusal]) -> Reply:
        if self.settings.llm_recorded is not None:
            return recording(self.settings.llm_recorded).ask(messages)
        from openai import OpenAI

        client = OpenAI(base_url=self.settings.llm_base_url, api_key=api_key(), timeout=120, max_retries=1)
        return ask_server(
            client, self.settings.llm_model, messages, schema, self.settings.llm_response_format,
            self.settings.llm_base_url or "openai", self.settings.llm_max_tokens, refusals,
        )  # fmt: skip

    def _fall_back(
        self, state: ExperimentState, skills: SkillMemory, offers: Offers, notes: list[EventData], attempts: int,
        last_error: str,
    ) -> Decision:  # fmt: skip
        """The fallback policy decides, and is named as the decider: in the event's `policy`, the terminal
        line and the rationale, with the LLM's failure beside it."""
        fallback = self.fallback.decide(state, skills, offers)
        why = f"no valid answer in {attempts} attempt(s); last error: {last_error}"
        notes.append(
            PolicyFellBack(
                episode=state.decided + 1, from_policy=self.name, to_policy=self.fallback.name, reason=why[:2000]
            )
        )
        return Decision(
            fallback.action,
            fallback.steps,
            f"{fallback.rationale} [fallback: the llm gave {why[:300]}]",
            search_point=fallback.search_point,
            search_space=fallback.search_space,
            notes=(*fallback.notes, *notes),
            policy=f"{self.fallback.name} (fallback from llm)",
        )

    def _refused(
        self, episode: int, attempt: int, messages: list[dict[str, str]], refusals: list[Refusal]
    ) -> list[EventData]:
        """A refused response format is a call like any other, recorded, though it costs no attempt."""
        return [
            self._note(episode, attempt, messages, "", scrub_text(r.error, 1500), None, r.latency_s) for r in refusals
        ]

    @staticmethod
    def _since(t0: float, refusals: list[Refusal]) -> float:
        return round(time.perf_counter() - t0 - sum(r.latency_s for r in refusals), 3)

    def _note(
        self,
        episode: int,
        attempt: int,
        messages: list[dict[str, str]],
        text: str,
        error: str | None,
        reply: Reply | None,
        latency_s: float,
    ) -> LLMConsulted:
        prompt_tokens = reply.prompt_tokens if reply is not None else None
        completion_tokens = reply.completion_tokens if reply is not None else None
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
            base_url=self._source()[:2048] or None,
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
            latency_s=latency_s,
        )
