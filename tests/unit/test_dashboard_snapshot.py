"""The dashboard's read models survive a restart without a full replay: resumed from their snapshot,
caught up on the tail, equal to a full fold; a corrupt or foreign snapshot is refused and the log
replayed; a role that may not touch the snapshot bucket still serves, after one log line saying why."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from greenai.events import Envelope
from greenai.services.dashboard import readmodel_state, views
from greenai.services.dashboard.feed import Feed
from greenai.services.dashboard.readmodel import ReadModel
from greenai.shared.auth import AuthFiles, client_options
from greenai.shared.eventstore import EventStore
from greenai.shared.eventstore_records import StoredEvent
from greenai.shared.nats_server import EmbeddedNats
from greenai.shared.projection_snapshot import DASHBOARD_BUCKET, ensure_projection_bucket
from tests import factories as f
from tests.unit.test_dashboard_readmodel import a_run, started

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def run_of(exp: str, acc: float) -> list[Envelope]:
    return [
        f.run(exp, episodes=3), f.spec(exp), f.evaluate_requested(exp, 0), f.evaluated(exp, 0, 0.6, 50, 500, 4000),
        f.decided(exp, 1), f.step_requested(exp, 1), started(exp, f"{exp}-ep1-s0-quantize", "quantization@h"),
    ] + ([f.step_completed(exp, 1), f.evaluated(exp, 1, acc, 30, 300, 2000)] if acc else [])  # fmt: skip


@pytest.fixture
async def log(store: EventStore) -> AsyncIterator[EventStore]:
    await ensure_projection_bucket(store.js, bucket=DASHBOARD_BUCKET)
    yield store
    with contextlib.suppress(Exception):
        await (await store.js.object_store(DASHBOARD_BUCKET)).delete(f"{store.stream}.{readmodel_state.NAME}")


async def append(store: EventStore, events: list[Envelope]) -> None:
    for env in events:
        await store.append(env)


async def running(feed: Feed, store: EventStore) -> asyncio.Task[None]:
    task = asyncio.create_task(feed.follow(store))
    await asyncio.wait_for(feed.ready.wait(), 20)
    return task


async def stop(feed: Feed, task: asyncio.Task[None], save: bool = True) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    if save:
        await feed.close()


async def caught_up(feed: Feed, store: EventStore) -> None:
    last = (await store.js.stream_info(store.stream)).state.last_seq
    async with asyncio.timeout(10):
        while feed.read.last_seq < last:
            await asyncio.sleep(0.02)


async def full_fold(store: EventStore) -> ReadModel:
    read = ReadModel()
    async for item in store.read_everything():
        read.apply(item)
    return read


async def shown(feed: Feed) -> dict[str, Any]:
    """Everything the pages show, every experiment woken: what must equal a full fold's."""
    await feed.wake(*list(feed.read.dormant))
    return {
        "rows": sorted(feed.read.rows(), key=lambda r: r["id"]),
        "experiments": {e: views.experiment_snapshot(m) for e, m in sorted(feed.read.experiments.items())},
        "agents": views.agents(feed.read, NOW),
        "doing": feed.read.doing,
        "last_seq": feed.read.last_seq,
    }


async def expected(store: EventStore) -> dict[str, Any]:
    reference = Feed(snapshots=False)
    reference.read = await full_fold(store)
    return await shown(reference)


async def test_a_restart_resumes_from_the_snapshot_catches_up_the_tail_and_equals_a_full_fold(log: EventStore) -> None:
    await append(log, a_run() + run_of("b", 0.5) + run_of("c", 0.0))
    first = Feed()
    task = await running(first, log)
    assert first.first_read == 1 and first.resumed_from == 0
    await stop(first, task)
    saved = first.read.last_seq
    # the log moves on while the dashboard is down: an old experiment, a new one, an unrelated one untouched
    await append(log, [f.step_completed("c", 1), f.evaluated("c", 1, 0.45, 31, 310, 1900), *run_of("d", 0.3)])

    second = Feed()
    task = await running(second, log)
    assert second.resumed_from == saved
    assert second.first_read == saved + 1  # the read position: no replay from sequence 1
    assert second.replayed == len(run_of("d", 0.3)) + 2
    assert "b" in second.read.dormant  # untouched since the snapshot: not folded until a page asks
    assert "c" in second.read.experiments  # woken by its new event, then folded into
    assert await shown(second) == await expected(log)
    # and it keeps following: a live event after the restart lands in a woken experiment
    await append(log, [f.decided("b", 2)])
    await caught_up(second, log)
    assert await shown(second) == await expected(log)
    await stop(second, task, save=False)


async def test_a_page_waking_an_experiment_while_the_feed_folds_into_it_folds_each_event_once(log: EventStore) -> None:
    await append(log, run_of("b", 0.5))
    first = Feed()
    await stop(first, await running(first, log))
    second = Feed()
    task = await running(second, log)
    assert "b" in second.read.dormant
    more = [f.decided("b", 2), f.step_requested("b", 2)]
    await asyncio.gather(append(log, more), second.wake("b"))
    await caught_up(second, log)
    assert await shown(second) == await expected(log)
    await stop(second, task, save=False)


@pytest.mark.parametrize("damage", [b"not a snapshot at all", "truncated", "foreign", "tail aged out"])
async def test_a_corrupt_or_foreign_snapshot_is_refused_and_the_log_replayed(log: EventStore, damage: object) -> None:
    await append(log, a_run() + run_of("b", 0.5))
    first = Feed()
    await stop(first, await running(first, log))
    obs = await log.js.object_store(DASHBOARD_BUCKET)
    name = f"{log.stream}.{readmodel_state.NAME}"
    good = (await obs.get(name)).data
    assert good
    if damage == "truncated":
        raw = good[: len(good) // 2]
    elif damage == "tail aged out":  # the messages right after the snapshot are gone from the stream
        raw = good
        await append(log, [f.decided("b", 3)])
        await log.js.purge_stream(log.stream, seq=first.read.last_seq + 2)
    elif damage == "foreign":  # another stream's snapshot under this one's name
        raw = (await obs.get(name)).data
        await obs.put(f"OTHER.{readmodel_state.NAME}", raw)
        other = await obs.get(f"OTHER.{readmodel_state.NAME}")
        from greenai.shared.projection_snapshot import decode_snapshot, encode_snapshot

        header, state = decode_snapshot(other.data, 10**8)
        raw = encode_snapshot(header.model_copy(update={"stream": "OTHER"}), state)
    else:
        assert isinstance(damage, bytes)
        raw = damage
    await obs.put(name, raw)
    await append(log, [f.decided("b", 2)])
    with capture_logs() as logs:
        second = Feed()
        task = await running(second, log)
    refused = [e for e in logs if e["event"].startswith("snapshot refused")]
    assert len(refused) == 1, logs
    first_kept = (await log.js.stream_info(log.stream)).state.first_seq
    assert second.resumed_from == 0 and second.first_read == first_kept  # a replay from the start of the log
    assert await shown(second) == await expected(log)
    await stop(second, task, save=False)


def test_a_forged_state_is_refused_before_anything_is_kept() -> None:
    read = ReadModel()
    for seq, env in enumerate(a_run(), 1):
        read.apply(StoredEvent(seq, env))
    good = readmodel_state.dump_state(read)
    assert readmodel_state.load_state(good).dormant["e"] == views.summary(read.get("e"))  # type: ignore[arg-type]
    for bad in (
        good.replace(b'"last_seq":12', b'"last_seq":-1', 1),  # negative position
        good[:-2],  # cut
        good.replace(b'"rows":[', b'"rows":[{"id":"x","evil":1},', 1),  # unknown field
        good.replace(b'"unreadable":0', b'"unreadable":"0"', 1),  # a string where a number goes (strict)
        good.replace(b'"last_seq":12,"agents_seq"', b'"last_seq":1,"agents_seq"', 1),  # a row past the position
        good.replace(b'"id":"e"', b'"id":"../e"', 1),  # an id no subject could carry
    ):
        with pytest.raises(ValueError):
            readmodel_state.load_state(bad)


async def test_a_role_without_rights_on_the_bucket_serves_after_one_line_and_replays(
    server: EmbeddedNats, auth: AuthFiles
) -> None:
    def connect(role: str) -> Awaitable[EventStore]:
        return EventStore.connect(
            server.url, "GREENAI_EVENTS", name=role, options=client_options(auth.seed(role)),
            manage_stream=role == "admin",
        )  # fmt: skip

    admin = await connect("admin")
    await ensure_projection_bucket(admin.js, bucket=DASHBOARD_BUCKET)
    await append(admin, a_run())
    viewer = await connect("viewer")  # the dashboard's own role: it may keep its snapshot
    first = Feed(snapshot_io_s=3)
    await stop(first, await running(first, viewer))
    assert first.saved_seq == first.read.last_seq
    resumed = Feed(snapshot_io_s=3)
    task = await running(resumed, viewer)
    assert resumed.resumed_from == first.read.last_seq and resumed.first_read == 0
    await stop(resumed, task, save=False)

    cli = await connect("cli")  # a role with no rights on the bucket: reads nothing, writes nothing
    with capture_logs() as logs:
        blind = Feed(snapshot_io_s=1)
        task = await running(blind, cli)
        await stop(blind, task)
    assert blind.resumed_from == 0 and blind.first_read == 1
    assert await shown(blind) == await expected(admin)
    said = [e for e in logs if e.get("log_level") == "warning"]
    server_said = [e for e in said if e["event"] == "NATS connection error"]  # the server's refusal, named
    assert all("permissions violation" in e["error"] for e in server_said), server_said
    ours = [e["event"] for e in said if e not in server_said]
    assert ours == ["dashboard snapshot unreachable: replaying the log, and restarts will too"]
    for s in (cli, viewer, admin):
        await s.close()
