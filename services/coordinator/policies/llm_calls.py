"""One chat completion for the LLM policy: from a live OpenAI-compatible server, with the answer's JSON
schema sent in the form that server accepts, or from a recording of earlier `llm.consulted` events.

Servers differ in how they take a schema: OpenAI, vLLM and llama.cpp's C++ server take
`{"type": "json_schema", "json_schema": {...}}`; llama-cpp-python's server refuses that (HTTP 500)
and takes `{"type": "json_object", "schema": {...}}`; `transformers serve` ignores both. With
`llm_response_format = "auto"` the OpenAI form is tried first and, when the server refuses the
response format itself, the next form; the form that worked is remembered per base URL for the
life of the process. A refusal is a call like any other: it is recorded (`FORMAT_REFUSED` in its
error) but costs no attempt.

A recording answers by the hash of the whole conversation (`conversation_sha256`): the same prompt
gets the same answer, so an LLM run over a deterministic landscape replays bit for bit offline. A
conversation asked k times gets the k-th recorded answer to it (the last one once they run out), so
repeated runs of one prompt replay as they were sampled. A conversation the recording does not hold
is an error, never a call to a server.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.events import decode
from greenai.events.experiment import LLMConsulted, digest_messages

FORMATS = ("json_schema", "json_object_schema", "json_object", "none")
FORMAT_REFUSED = "response_format refused by the server"
_ACCEPTED: dict[str, str] = {}  # base URL -> the response format its server took


class CallFailed(Exception):
    """The server (or the recording) gave no answer at all: asking again with a correction won't help."""


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    form: str


@dataclass(frozen=True)
class Refusal:
    """A response format the server refused, to record as a call."""

    form: str
    error: str
    latency_s: float


def response_format(form: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "decision", "schema": schema, "strict": False}}
    if form == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    if form == "json_object":
        return {"type": "json_object"}
    if form == "none":
        return None
    raise ValueError(f"unknown llm_response_format {form!r}; known: auto, {', '.join(FORMATS)}")


def refused_format(exc: Exception) -> bool:
    """Whether the server refused the request because of its response_format (not the prompt or the key)."""
    status = getattr(exc, "status_code", None)
    text = str(exc).lower()
    return status in (400, 422, 500) and ("response_format" in text or "json_schema" in text)


def forms_to_try(setting: str, base_url: str) -> list[str]:
    if setting != "auto":
        response_format(setting, {})  # refuses an unknown name before any call
        return [setting]
    known = _ACCEPTED.get(base_url)
    return [known] if known else ["json_schema", "json_object_schema", "json_object"]


def ask_server(
    client: Any, model: str, messages: list[dict[str, str]], schema: dict[str, Any], setting: str, base_url: str,
    max_tokens: int, refusals: list[Refusal],
) -> Reply:  # fmt: skip
    """One answer from the server, trying response formats as `forms_to_try` says; refusals are appended."""
    forms = forms_to_try(setting, base_url)
    for i, form in enumerate(forms):
        extra: dict[str, Any] = {}
        fmt = response_format(form, schema)
        if fmt is not None:
            extra["response_format"] = fmt
        t0 = time.perf_counter()
        try:
            response = client.chat.completions.create(
                model=model, messages=messages, temperature=0.2, max_tokens=max_tokens, **extra
            )
        except Exception as exc:
            if i + 1 < len(forms) and refused_format(exc):
                error = f"{FORMAT_REFUSED} ({form}); trying {forms[i + 1]}: {exc}"
                refusals.append(Refusal(form, error, round(time.perf_counter() - t0, 3)))
                continue
            raise CallFailed(f"{type(exc).__name__}: {exc}") from exc
        _ACCEPTED[base_url] = form
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None else ""
        usage = response.usage
        return Reply(text, getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None), form)
    raise CallFailed("no response format left to try")  # unreachable: the last form raises or answers


class Recording:
    """Earlier answers by conversation hash, read from a JSON-lines export of events (`greenai export`,
    or the file a bench writes). Format refusals are skipped: they were not answers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.answers: dict[str, list[LLMConsulted]] = {}
        self.served: dict[str, int] = {}
        if not path.is_file():
            raise CallFailed(f"no recording at {path}")
        self.mtime = path.stat().st_mtime
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            data = decode(line).data
            if isinstance(data, LLMConsulted) and not (data.error or "").startswith(FORMAT_REFUSED):
                self.answers.setdefault(data.conversation_sha256, []).append(data)

    def ask(self, messages: list[dict[str, str]]) -> Reply:
        _, whole = digest_messages(messages)
        recorded = self.answers.get(whole)
        if not recorded:
            raise CallFailed(f"the recording {self.path.name} holds no answer to this conversation ({whole[:12]})")
        k = self.served.get(whole, 0)
        self.served[whole] = k + 1
        found = recorded[min(k, len(recorded) - 1)]
        if found.answer_chars > len(found.answer):
            raise CallFailed(f"the recorded answer was cut to {len(found.answer)} of {found.answer_chars} chars")
        if not found.answer and found.error:
            raise CallFailed(f"as recorded: {found.error}")
        return Reply(found.answer, found.prompt_tokens, found.completion_tokens, "recorded")


_RECORDINGS: dict[Path, Recording] = {}


def recording(path: Path) -> Recording:
    """Read once per process (a coordinator builds a policy per decision)."""
    path = path.expanduser().resolve()
    cached = _RECORDINGS.get(path)
    if cached is None or not path.is_file() or path.stat().st_mtime != cached.mtime:
        cached = _RECORDINGS[path] = Recording(path)
    return cached


def api_key() -> str:
    """Read by the client from the environment only; a local server needs none."""
    return os.environ.get("OPENAI_API_KEY", "not-needed")
