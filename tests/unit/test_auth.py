"""Identities and permissions enforced by a real nats-server: each role's forbidden publish is refused
and nothing is appended; a client without (or with unknown) credentials cannot connect at all."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from greenai.events import new_event
from greenai.events.experiment import EpisodeDecided, RunRequested
from greenai.events.jobs import JobStarted
from greenai.events.registry import event_types, lookup
from greenai.events.results import Energy, EvaluateCompleted, Latency, StepCompleted
from greenai.shared.auth import PLANNED, PRODUCES, AuthFiles, client_options, init_auth, public_key
from greenai.shared.eventstore import EventStore, PermissionDenied
from greenai.shared.nats_server import EmbeddedNats

STREAM = "GREENAI_EVENTS"


async def connect(server: EmbeddedNats, auth: AuthFiles, role: str) -> EventStore:
    return await EventStore.connect(
        server.url, STREAM, name=role, options=client_options(auth.seed(role)), manage_stream=role == "admin"
    )


@pytest.fixture
async def admin(server: EmbeddedNats, auth: AuthFiles) -> AsyncIterator[EventStore]:
    store = await connect(server, auth, "admin")
    yield store
    await store.close()


def evaluated() -> EvaluateCompleted:
    return EvaluateCompleted(
        job_id="j", episode=1, task="arc_easy", metric="acc", accuracy=1.0, accuracy_stderr=None, ci_low=0.9,
        ci_high=1.0, n=10, limit=None, peak_rss_mb=1, size_bytes=1, wall_s=1,
        latency=Latency(prefill_ms_per_token=1, decode_ms_per_token=0.001, decode_tokens_per_s=1e6, device="cpu"),
        energy=Energy(joules=0, mode="unavailable", detail="forged"),
    )  # fmt: skip


def test_the_role_table_matches_the_event_registry() -> None:
    registered = {t for t, _ in event_types()}
    produced = {t for types in PRODUCES.values() for t in types}
    generic = {t for t in produced - registered if lookup(t, StepCompleted.VERSION)}  # kinds with no class of their own
    assert produced - registered - generic <= set(PLANNED), produced - registered - generic - set(PLANNED)
    assert registered <= produced, f"types no role may produce: {registered - produced}"


def test_seed_files_are_private_and_the_server_holds_only_public_keys(auth: AuthFiles) -> None:
    assert stat.S_IMODE(os.stat(auth.folder).st_mode) == 0o700
    conf = auth.server_conf.read_text()
    for role in PRODUCES:
        seed = auth.seed(role)
        assert stat.S_IMODE(os.stat(seed).st_mode) == 0o600
        assert seed.read_text().strip() not in conf
        assert public_key(seed) in conf
    before = auth.seed("quantization").read_bytes()
    assert init_auth(auth.folder).seed("quantization").read_bytes() == before  # idempotent
    assert init_auth(auth.folder, rotate=True).seed("quantization").read_bytes() != before


async def test_forbidden_publishes_are_refused_and_nothing_is_appended(
    server: EmbeddedNats, auth: AuthFiles, admin: EventStore
) -> None:
    forged = {
        "quantization": evaluated(),  # a forged result entering the Pareto front
        "evaluation": EpisodeDecided(episode=1, action="end", policy="x", rationale="forged"),
        "cli": EpisodeDecided(episode=1, action="end", policy="x", rationale="forged"),
        "viewer": RunRequested(model="m", dataset="arc_easy", episodes=1),
        "pruning": JobStarted(job_id="j", kind="quantize", agent="x", instance="x", attempt=1).model_copy(),
    }
    # pruning may publish job.started; give it something it may not: a run request
    forged["pruning"] = RunRequested(model="m", dataset="arc_easy", episodes=1)
    for role, data in forged.items():
        store = await connect(server, auth, role)
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(PermissionDenied):
                await store.append(new_event(f"forged-{role}", data, producer=role))
            assert loop.time() - start < 10, "a refusal is reported at once, not after the outage budget"
        finally:
            await store.close()
        assert (await admin.read(f"forged-{role}")).events == []


async def test_each_role_can_do_its_own_work(server: EmbeddedNats, auth: AuthFiles, admin: EventStore) -> None:
    allowed = {
        "cli": RunRequested(model="m", dataset="arc_easy", episodes=1),
        "coordinator": EpisodeDecided(episode=1, action="end", policy="x", rationale="r"),
        "quantization": JobStarted(job_id="j", kind="quantize", agent="q", instance="q", attempt=1),
        "evaluation": evaluated(),
    }
    for role, data in allowed.items():
        store = await connect(server, auth, role)
        try:
            await store.append(new_event(f"ok-{role}", data, producer=role))
            history = await store.read(f"ok-{role}")  # every role reads the log
            assert [e.envelope.type for e in history.events] == [data.TYPE]
        finally:
            await store.close()


async def test_only_admin_may_delete_purge_or_reconfigure_the_stream(
    server: EmbeddedNats, auth: AuthFiles, admin: EventStore
) -> None:
    await admin.append(new_event("keep", RunRequested(model="m", dataset="arc_easy", episodes=1), producer="t"))
    for role in ("coordinator", "quantization", "cli", "viewer"):
        store = await connect(server, auth, role)
        try:
            attempts = (
                store.js.delete_stream(STREAM),
                store.js.purge_stream(STREAM),
                store.js.update_stream(admin.stream_config().evolve(max_age=1.0)),
                store.js.delete_consumer(STREAM, "coordinator"),
            )
            outcomes = await asyncio.gather(*(asyncio.wait_for(a, 1.5) for a in attempts), return_exceptions=True)
            assert all(isinstance(o, BaseException) for o in outcomes), outcomes  # refused (or never answered)
        finally:
            await store.close()
    info = await admin.js.stream_info(STREAM)
    assert info.state.messages == 1 and info.config.max_age in (0, None)


async def test_a_worker_cannot_take_another_workers_jobs(
    server: EmbeddedNats, auth: AuthFiles, admin: EventStore
) -> None:
    from nats.js import api

    durable = "evaluation-evaluate-requested"
    config = api.ConsumerConfig(
        durable_name=durable, ack_policy=api.AckPolicy.EXPLICIT, filter_subject="greenai.evt.*.evaluate.requested"
    )
    await admin.js.add_consumer(STREAM, config)
    await admin.js.publish("greenai.evt.x.evaluate.requested", b"{}", stream=STREAM)
    thief = await connect(server, auth, "quantization")
    try:
        with pytest.raises(Exception):  # noqa: B017 - refused, so it times out with the job still there
            sub = await thief.js.pull_subscribe_bind(durable=durable, stream=STREAM)
            await sub.fetch(1, timeout=2.0)
    finally:
        await thief.close()
    owner = await connect(server, auth, "evaluation")
    try:
        sub = await owner.js.pull_subscribe_bind(durable=durable, stream=STREAM)
        (msg,) = await sub.fetch(1, timeout=5.0)  # the owner gets the job the thief could not take
        assert msg.metadata.num_delivered == 1
        await msg.ack()
    finally:
        await owner.close()


async def test_no_credentials_or_unknown_credentials_cannot_connect(
    server: EmbeddedNats, auth: AuthFiles, tmp_path: Path
) -> None:
    with pytest.raises(Exception):  # noqa: B017 - nats-py raises NoServersError / AuthorizationError
        await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    stranger = init_auth(tmp_path / "elsewhere").seed("admin")  # a valid seed the server does not know
    with pytest.raises(Exception):  # noqa: B017
        await nats.connect(
            server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, **client_options(stranger)
        )
    os.chmod(auth.seed("viewer"), 0o644)
    with pytest.raises(Exception, match="readable by others"):
        client_options(auth.seed("viewer"))


async def test_artifacts_are_written_by_producers_and_read_by_any_role(
    server: EmbeddedNats, auth: AuthFiles, admin: EventStore, tmp_path: Path
) -> None:
    from greenai.shared.artifact_store import ArtifactStore

    await ArtifactStore(admin.js, "greenai-artifacts", tmp_path / "admin").ensure_bucket()
    src = tmp_path / "model"
    src.mkdir()
    (src / "w.bin").write_bytes(os.urandom(3 * 4096 + 17))
    writer, reader = await connect(server, auth, "quantization"), await connect(server, auth, "evaluation")
    try:
        artifact = await ArtifactStore(writer.js, "greenai-artifacts", tmp_path / "w", chunk_bytes=4096).put_folder(src)
        got = await ArtifactStore(reader.js, "greenai-artifacts", tmp_path / "r").get_folder(artifact)
        assert (got / "w.bin").read_bytes() == (src / "w.bin").read_bytes()
        with pytest.raises(nats.errors.TimeoutError):  # the evaluation agent produces no artifacts: no ack
            await asyncio.wait_for(
                ArtifactStore(reader.js, "greenai-artifacts", tmp_path / "r2").put_folder(tmp_path / "r"), 15
            )
    finally:
        await writer.close()
        await reader.close()


async def test_an_agent_announces_only_itself_and_the_coordinator_requests_any_kind_but_runs(
    server: EmbeddedNats, auth: AuthFiles, admin: EventStore
) -> None:
    from greenai.events.capabilities import agents_experiment
    from greenai.events.jobs import ArtifactRef, step_request_class
    from tests.factories import agent_offers, announced

    quant = [m for m in agent_offers().methods if m.kind == "quantize"]
    own = announced("quantization", "quantize", quant)
    store = await connect(server, auth, "quantization")
    try:
        await store.append(own)
        with pytest.raises(PermissionDenied):  # speaking for the pruning agent
            await store.append(own.model_copy(update={"experiment_id": agents_experiment("pruning")}))
    finally:
        await store.close()
    assert len((await admin.read(agents_experiment("quantization"))).events) == 1
    assert (await admin.read(agents_experiment("pruning"))).events == []
    coordinator = await connect(server, auth, "coordinator")
    try:
        cast = step_request_class("cast")(job_id="j", episode=1, source=ArtifactRef(kind="base", model="m"), method="x")
        await coordinator.append(new_event("kinds", cast, producer="c"))  # a kind announced later: allowed
        with pytest.raises(PermissionDenied):
            await coordinator.append(new_event("kinds", RunRequested(model="m", dataset="d", episodes=1), producer="c"))
    finally:
        await coordinator.close()
    assert [e.envelope.type for e in (await admin.read("kinds")).events] == ["cast.requested"]
