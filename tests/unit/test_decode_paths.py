"""decode's fast path (one pydantic-core pass per registered (type, version)) must be invisible: for
every message it either gives exactly what the general decoder gives, or steps aside and lets the
general decoder decide, errors and their wording included."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from greenai.events import Envelope, MalformedEvent, decode
from greenai.events.envelope import _decode_fast, decode_general
from greenai.events.experiment import EpisodeDecidedV1
from greenai.events.jobs import STEP_REQUESTS
from greenai.events.registry import event_types
from tests import factories as f

BENCH = Path(__file__).resolve().parents[2] / "bench"


def hostile_inputs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hostile_inputs", BENCH / "hostile_inputs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("hostile_inputs", module)
    spec.loader.exec_module(module)
    return module


def outcome(decoder: object, raw: bytes | str) -> tuple[str, object]:
    try:
        env = decoder(raw)  # type: ignore[operator]
    except MalformedEvent as exc:
        return "malformed", str(exc)
    # repr, not ==: a NaN that both decoders accepted is still equal in repr
    return "ok", repr((env.model_dump(), sorted(env.model_fields_set), type(env.data), type(env)))


def assert_same(raw: bytes | str) -> None:
    assert outcome(decode, raw) == outcome(decode_general, raw)


def real_events() -> list[Envelope]:
    steps = [*(f.step_requested("e", 1, kind=k) for k in STEP_REQUESTS), f.step_completed("e", 1, kind="prune")]
    return [
        f.run("e"), f.spec("e"), f.staged("e"), f.decided("e", 1), f.quantize_requested("e", 1), f.quantized("e", 1),
        f.evaluate_requested("e", 1), f.evaluated("e", 1, 0.5, 20.0, 100.0, 1000), *steps,
        f.announced("quantization", "quantize", [m for m in f.agent_offers().methods if m.kind == "quantize"]),
    ]  # fmt: skip


@pytest.mark.parametrize("env", real_events(), ids=lambda e: e.type)
def test_real_events_take_the_fast_path_and_equal_the_general_one(env: Envelope) -> None:
    raw = env.encode()
    fast = _decode_fast(raw)
    assert fast is not None, "a well-formed event of a registered type should not need the general path"
    general = decode_general(raw)
    assert fast == general == env
    assert fast.model_fields_set == general.model_fields_set
    assert type(fast.data) is type(general.data)
    assert fast.encode() == general.encode() == raw
    assert decode(raw.decode()) == env  # str in, same envelope


def test_an_old_version_is_upcast_on_the_fast_path_too() -> None:
    old = EpisodeDecidedV1(
        episode=1, action="quantize", method="autoround", params={"bits": 4}, policy="p", rationale="r"
    )
    raw = json.dumps({
        "event_id": str(uuid.uuid4()), "experiment_id": "e", "type": "episode.decided", "version": 1,
        "time": "2026-01-01T00:00:00Z", "producer": "t", "data": old.model_dump(),
    }).encode()  # fmt: skip
    assert _decode_fast(raw) is not None
    assert_same(raw)
    assert decode(raw).version == 3 and decode(raw).data.steps[0].method == "autoround"  # type: ignore[attr-defined]


def _variants(env: Envelope) -> list[bytes]:
    obj = json.loads(env.encode())
    data_first = {"data": {"type": "x", "version": 7, **obj["data"]}, **{k: v for k, v in obj.items() if k != "data"}}
    return [
        json.dumps({**obj, "version": 1.0}).encode(),
        json.dumps({**obj, "version": str(obj["version"])}).encode(),
        json.dumps({**obj, "version": True}).encode(),
        json.dumps({**obj, "version": 99}).encode(),
        json.dumps({**obj, "type": "run\\u002erequested"}).encode(),
        json.dumps({**obj, "type": "nonsense.happened"}).encode(),
        json.dumps({**obj, "extra": 1}).encode(),
        json.dumps(data_first).encode(),  # nested "type"/"version" seen first: the peek is wrong, nothing else
        json.dumps({**obj, "experiment_id": "has.dots"}).encode(),
        json.dumps({**obj, "time": float("nan")}).encode(),
        b'{"version": 99, ' + env.encode()[1:],  # a key twice: the last one counts
        env.encode()[:-1] + b', "version": 99}',
        env.encode()[:-1],
        env.encode() + b"\xff",
        b"\xff" + env.encode(),
        env.encode().replace(env.experiment_id.encode(), b"e\xed\xa0\x80", 1),
        b'{"type": "run.requested", "version": 1}',
        b"[1, 2]",
        b"",
    ]


@pytest.mark.parametrize("env", real_events(), ids=lambda e: e.type)
def test_odd_messages_decode_exactly_as_the_general_decoder_says(env: Envelope) -> None:
    for raw in _variants(env):
        assert_same(raw)


def test_every_registered_type_and_its_hostile_mutations_agree() -> None:
    hostile = hostile_inputs()
    checked = 0
    for (type_, version), cls in event_types().items():
        body = hostile.valid_body(cls)
        if body is None:
            continue
        raw = json.dumps(hostile.envelope("e", type_, version, body)).encode()
        assert_same(raw)
        checked += 1
    assert checked >= 20
    for item in hostile.generate(seed=0, per_type=8, experiment_prefix="h"):
        assert_same(item.body)


def test_the_fast_path_keeps_a_bounded_cache() -> None:
    from greenai.events import envelope

    env = f.run("e")
    for i in range(3):  # unknown types are never cached
        assert _decode_fast(env.encode().replace(b"run.requested", f"zz{i}.requested".encode())) is None
    assert all(key in event_types() for key in envelope._STRICT)
    assert len(envelope._STRICT) <= envelope._STRICT_MAX
