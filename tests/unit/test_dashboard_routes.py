"""The dashboard's new routes over HTTP, without a browser: the server in this process (uvicorn) on a
real nats-server's log. The adversary's requests to cancel, edit and compare — forged origin, not
JSON, oversized, malformed, unknown, finished, hostile ids, too many experiments — are refused with
the reason and append nothing; a good cancel appends one event and a second is refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from greenai.events import new_event
from greenai.events.experiment import DecisionProposed, ExperimentCompleted, Step
from greenai.services.dashboard.feed import Feed
from greenai.services.dashboard.server import MAX_COMPARED, create_app
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats
from tests import factories as f

JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=20) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def call(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    status, text = await asyncio.to_thread(request, url, raw, JSON if headers is None else headers)
    with contextlib.suppress(ValueError):
        return status, json.loads(text)
    return status, text


@contextlib.asynccontextmanager
async def serving(store: EventStore, nats: EmbeddedNats, settings: Settings, act: bool) -> AsyncIterator[str]:
    async def open_store() -> EventStore:  # another connection to the test's own stream, as the server makes
        return await EventStore.connect(nats.url, store.stream)

    app = create_app(Feed(), open_store, open_store if act else None, settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def logged(store: EventStore) -> EventStore:
    step = Step(kind="quantize", method="rtn", params={"bits": 8})
    proposed = DecisionProposed(episode=1, proposal=1, action="compress", steps=[step], policy="grid", rationale="r")
    done = ExperimentCompleted(reason="1 episode(s) run", episodes_run=1)
    for env in [
        f.run("e", episodes=3, interactive=True), f.spec("e"), f.evaluated("e", 0, 0.6, 50, 500, 4000),
        new_event("e", proposed, producer="c"), f.run("done"), new_event("done", done, producer="c"),
    ]:  # fmt: skip
        await store.append(env)
    return store


async def types(store: EventStore, exp: str) -> list[str]:
    return [e.envelope.type for e in (await store.read(exp)).events]


async def test_cancel_and_edit_refuse_what_they_must_and_append_once(
    logged: EventStore, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    store = logged
    async with serving(store, nats_server, Settings(work_dir=tmp_path), act=True) as url:
        cancel = url + "/api/experiments/e/cancel"
        assert (await call(cancel, {}, {"Content-Type": "application/x-www-form-urlencoded"}))[0] == 415
        assert (await call(cancel, {}, {**JSON, "Origin": "http://evil.example"}))[0] == 403
        assert (await call(cancel, b'{"reason": "' + b"x" * 20_000 + b'"}'))[0] == 413
        assert (await call(cancel, b"{not json"))[0] == 400
        status, answer = await call(cancel, {"reason": "x" * 2001})
        assert status == 400 and answer["error"].startswith("bad form: reason")
        status, answer = await call(cancel, {"kill": "-9"})
        assert status == 400 and "kill" in answer["error"]
        status, answer = await call(url + "/api/experiments/nobody/cancel", {})
        assert (status, answer["error"]) == (404, "no experiment 'nobody' in the log")
        status, answer = await call(url + "/api/experiments/done/cancel", {})
        assert status == 409 and answer["error"] == "experiment 'done' already completed: 1 episode(s) run"
        assert (await call(url + "/api/experiments/..%2Fdone/cancel", {}))[0] == 404

        review = url + "/api/experiments/e/review"
        for bad in (
            {"episode": 1, "proposal": 1, "verdict": "edit"},
            {"episode": 1, "proposal": 1, "verdict": "edit", "steps": [{"kind": "x;rm", "method": "m"}]},
            {"episode": 1, "proposal": 1, "verdict": "approve", "steps": []},
        ):
            status, answer = await call(review, bad)
            assert status == 400 and answer["error"].startswith("bad form"), answer
        assert await types(store, "e") == ["run.requested", "spec.inferred", "evaluate.completed", "decision.proposed"]
        assert await types(store, "done") == ["run.requested", "experiment.completed"]

        steps = [{"kind": "prune", "method": "magnitude", "params": {"sparsity": 0.3}}]
        status, _ = await call(review, {"episode": 1, "proposal": 1, "verdict": "edit", "steps": steps})
        assert status == 201
        assert (await call(cancel, {"reason": "enough"}))[0] == 201
        status, answer = await call(cancel, {})
        assert status == 409 and "already cancelled" in answer["error"]
        assert (await types(store, "e"))[-2:] == ["decision.reviewed", "experiment.cancelled"]
        assert (await types(store, "e")).count("experiment.cancelled") == 1


async def test_compare_takes_two_to_eight_valid_ids_and_a_read_only_dashboard_cancels_nothing(
    logged: EventStore, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    store = logged
    async with serving(store, nats_server, Settings(work_dir=tmp_path), act=False) as url:
        status, page = await call(url + "/compare?e=e&e=done&e=e&e=not-yet", None, {})
        assert status == 200 and 'data-exps="e,done,not-yet"' in page  # repeats once; unknown: shown when requested
        status, page = await call(url + "/compare", None, {})
        assert status == 200 and 'id="compare-hint"' in page
        for bad in ("..%2Fetc", "a.b", "%3Cscript%3E", "x" * 81):
            status, page = await call(f"{url}/compare?e=e&e={bad}", None, {})
            assert status == 404 and "<script>" not in page, bad
        many = "&".join(f"e=x{i}" for i in range(MAX_COMPARED + 1))
        status, page = await call(f"{url}/compare?{many}", None, {})
        assert status == 400 and "compare 8 at most" in page and "<h1>Refused</h1>" in page
        assert (await call(f"{url}/api/stream/compare?{many}", None, {}))[0] == 400
        status, answer = await call(url + "/api/experiments/e/cancel", {})
        assert status == 403 and answer["error"].startswith("read-only")
    assert "experiment.cancelled" not in await types(store, "e")
