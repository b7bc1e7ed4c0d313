"""Hostile run requests published straight on the bus (not through the CLI), against a real
coordinator on a real nats-server: each ends its experiment with `experiment.failed` and the reason,
before any compute (no spec, no job request), and `greenai experiments` lists it as failed or
rejected, never as running."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from greenai.events import new_event
from greenai.events.experiment import ExperimentFailed, RunRequested, Step
from greenai.services.coordinator.admission import MAX_PLAN_EPISODES, Refused, admit
from greenai.services.coordinator.agent import Coordinator
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import EmbeddedNats

GOOD: dict[str, Any] = {"model": "smollm2-135m", "dataset": "arc_easy", "episodes": 1, "policy": "grid"}


def envelope(exp: str, **data: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "experiment_id": exp,
        "type": "run.requested",
        "version": 1,
        "time": datetime.now(UTC).isoformat(),
        "producer": "outsider",
        "data": data,
    }


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path) -> Settings:
    return Settings(work_dir=tmp_path / "work", data_dir=data_dir, ack_wait_s=4)


@pytest.fixture
async def coordinator(store: EventStore, settings: Settings) -> AsyncIterator[Coordinator]:
    coord = Coordinator(store, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(coord.serve(stop))
    yield coord
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 10)


async def publish(store: EventStore, subject: str, body: bytes) -> None:
    await store.js.publish(subject, body, stream=store.stream)


async def failure_of(store: EventStore, exp: str, timeout: float = 15.0) -> tuple[ExperimentFailed, float, list[str]]:
    """The experiment's `experiment.failed`, seconds from the request to it, and every event type."""
    t0 = time.monotonic()
    while True:
        history = await store.read(exp)
        failed = [e.envelope for e in history.events if isinstance(e.envelope.data, ExperimentFailed)]
        if failed:
            assert isinstance(failed[0].data, ExperimentFailed)
            return failed[0].data, time.monotonic() - t0, [e.envelope.type for e in history.events]
        assert time.monotonic() - t0 < timeout, (
            f"no experiment.failed for {exp}: {[e.envelope.type for e in history.events]}"
        )
        await asyncio.sleep(0.05)


def assert_no_compute(types: list[str]) -> None:
    assert "spec.inferred" not in types
    assert not [t for t in types if t.endswith(".requested") and t != "run.requested"], types


RAW_CASES: dict[str, tuple[bytes | None, str]] = {
    # name: (body, or None for a valid-JSON envelope built below; text expected in the reason)
    "no-model": (None, "model"),
    "episodes-negative": (None, "episodes"),
    "not-json": (b"{this is not json", "not JSON"),
    "unknown-step-kind": (None, "kind"),
}


def raw_body(name: str, exp: str) -> bytes:
    body, _ = RAW_CASES[name]
    if body is not None:
        return body
    data = dict(GOOD)
    if name == "no-model":
        del data["model"]
    elif name == "episodes-negative":
        data["episodes"] = -1
    elif name == "unknown-step-kind":
        data |= {"policy": "plan", "plan": [[{"kind": "Explode; rm -rf", "method": "x"}]]}
    return json.dumps(envelope(exp, **data)).encode()


@pytest.mark.parametrize("case", sorted(RAW_CASES))
async def test_a_request_that_is_no_event_ends_its_experiment(
    case: str, store: EventStore, coordinator: Coordinator
) -> None:
    exp = f"raw-{case}"
    await publish(store, f"greenai.evt.{exp}.run.requested", raw_body(case, exp))
    failed, seconds, types = await failure_of(store, exp)
    print(f"{case}: experiment.failed after {seconds:.2f} s")
    assert "event.rejected" in types
    assert RAW_CASES[case][1] in failed.reason, failed.reason
    assert_no_compute(types)


BAD_REQUESTS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown-policy": ({"policy": "magic"}, "unknown policy"),
    "unknown-dataset": ({"dataset": "no_such_benchmark"}, "unknown benchmark"),
    "perplexity-target": ({"dataset": "wikitext2"}, "lower is better"),
    "model-outside": ({"model": "/etc"}, "outside the models dir"),
    "model-traversal": ({"model": "../../../etc"}, "outside the models dir"),
    "model-home": ({"model": "~/models/x"}, "not allowed"),
    "plan-without-plan-policy": ({"plan": [[Step(kind="quantize", method="gptq")]]}, "only taken by policy 'plan'"),
    "plan-policy-without-plan": ({"policy": "plan"}, "needs a plan"),
    "huge-request": ({"requested_by": "x" * 200_000}, "bytes as JSON"),  # under the store's own limit
    "too-many-secondary": ({"secondary": ["arc_easy"] * 9}, "secondary"),
    "huge-calibration": ({"calibration_samples": 10**9}, "calibration_samples"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
async def test_an_impossible_request_fails_before_any_compute(
    case: str, store: EventStore, coordinator: Coordinator
) -> None:
    update, expected = BAD_REQUESTS[case]
    exp = f"bad-{case}"
    await store.append(new_event(exp, RunRequested(**(GOOD | update)), producer="outsider", key="run"))
    failed, seconds, types = await failure_of(store, exp)
    print(f"{case}: experiment.failed after {seconds:.2f} s")
    assert failed.error_type == "Refused" and expected in failed.reason, failed.reason
    assert_no_compute(types)


async def test_a_900_kb_body_on_the_bus(store: EventStore, coordinator: Coordinator) -> None:
    exp = "raw-900kb"
    body = json.dumps(envelope(exp, **GOOD, requested_by="x" * 900_000)).encode()
    assert len(body) > 900_000
    try:
        await publish(store, f"greenai.evt.{exp}.run.requested", body)
    except Exception as exc:  # a stream with a message size limit refuses it outright: answered too
        print(f"the server refused the publish: {exc}")
        return
    failed, _, types = await failure_of(store, exp)
    assert "bytes" in failed.reason or "event.rejected" in types
    assert_no_compute(types)


async def test_a_body_naming_another_experiment_is_refused(store: EventStore, coordinator: Coordinator) -> None:
    await publish(store, "greenai.evt.subject-exp.run.requested", json.dumps(envelope("body-exp", **GOOD)).encode())
    failed, _, types = await failure_of(store, "subject-exp")
    assert "event.rejected" in types and "body-exp" in failed.reason
    assert_no_compute(types)
    assert (await store.read("body-exp")).events == [], "the body's experiment is never started"


def test_admission_accepts_a_model_under_the_models_dir_and_a_bounded_plan(
    settings: Settings, tiny_model_dir: Path
) -> None:
    roots = settings.allowed_model_roots
    plan = [[Step(kind="quantize", method="gptq", params={"bits": 4})]] * MAX_PLAN_EPISODES
    run = RunRequested(**(GOOD | {"model": "tiny", "policy": "plan", "plan": plan, "episodes": MAX_PLAN_EPISODES}))
    target = settings.models_dir / "tiny"
    target.parent.mkdir(parents=True)
    target.symlink_to(tiny_model_dir, target_is_directory=True)
    with pytest.raises(Refused, match="outside the models dir"):
        admit(run, roots, [], data_dir=settings.data_dir)  # a link out of the models dir is refused
    target.unlink()
    shutil.copytree(tiny_model_dir, target)
    admit(run, roots, [], data_dir=settings.data_dir)  # by its name under the models dir
    admit(run.model_copy(update={"model": str(target)}), roots, [], data_dir=settings.data_dir)  # or its full path
    bigger = run.model_copy(update={"plan": [[Step(kind="prune", method="wanda", params={"x": "y" * 5000})]]})
    with pytest.raises(Refused, match="params"):
        admit(bigger, roots, [], data_dir=settings.data_dir)


async def test_experiments_lists_failed_and_rejected_requests_with_their_reason(
    store: EventStore, coordinator: Coordinator, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    await store.append(new_event("bad-policy", RunRequested(**(GOOD | {"policy": "magic"})), producer="o", key="run"))
    await publish(store, "greenai.evt.bad-json.run.requested", b"not json at all")
    await publish(store, "greenai.evt.bad!id.run.requested", b"{}")  # no valid experiment: under _system
    await failure_of(store, "bad-policy")
    await failure_of(store, "bad-json")
    deadline = time.monotonic() + 15
    while not (await store.read("_system")).events:
        assert time.monotonic() < deadline, "the unaddressable request was not recorded under _system"
        await asyncio.sleep(0.05)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env |= {"GREENAI_STREAM": store.stream, "GREENAI_WORK_DIR": str(tmp_path / "cli"), "COLUMNS": "400"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "greenai", "experiments", "--nats-url", nats_server.url,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out = (await asyncio.wait_for(proc.communicate(), 120))[0].decode()
    assert proc.returncode == 0, out
    print(out)
    lines = {line.split()[1]: line for line in out.splitlines() if line.count("│") > 3}
    assert "failed" in lines["bad-policy"] and "unknown policy" in lines["bad-policy"]
    assert "rejected" in lines["bad-json"] and "not JSON" in lines["bad-json"]
    assert "rejected (unaddressable): 1" in lines["_system"]
    assert "running" not in out
