"""The event log on a real nats-server (started by the session fixture on a free port)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js import api

from greenai.events import new_event
from greenai.events.experiment import ExperimentCompleted, RunRequested
from greenai.shared.eventstore import (
    ConcurrencyError,
    EventStore,
    EventTooLarge,
    StoredEvent,
    StreamLimits,
    StreamMismatch,
    Unreadable,
)  # fmt: skip
from greenai.shared.nats_cluster import NatsNode, free_ports


def req(exp: str, key: str | None = "run") -> object:
    return new_event(exp, RunRequested(model="m", dataset="arc_easy", episodes=1), producer="t", key=key)


async def test_append_and_replay_in_order(store: EventStore) -> None:
    first = req("a")
    done = new_event("a", ExperimentCompleted(reason="r", episodes_run=0), producer="t", cause=first)
    await store.append(first)
    await store.append(req("b"))
    await store.append(done)
    history = await store.read("a")
    assert [e.envelope for e in history.events] == [first, done]
    assert history.last_seq == 3
    assert (await store.read("nobody")).events == []


async def test_a_repeated_event_is_stored_once(store: EventStore) -> None:
    event = req("a")
    one = await store.append(event)
    two = await store.append(event)
    assert two.duplicate and two.seq == one.seq
    assert len((await store.read("a")).events) == 1


async def test_optimistic_concurrency_is_per_experiment(store: EventStore) -> None:
    await store.append(req("a"), expected_last_seq=0)
    await store.append(req("b"), expected_last_seq=0)  # another experiment does not conflict
    late = new_event("a", ExperimentCompleted(reason="r", episodes_run=0), producer="t")
    with pytest.raises(ConcurrencyError):
        await store.append(late, expected_last_seq=0)
    assert (await store.append(late, expected_last_seq=1)).seq == 3


async def test_replay_skips_and_reports_malformed_messages(store: EventStore) -> None:
    await store.append(req("a"))
    await store.js.publish("greenai.evt.a.run.requested", b"{garbage", stream=store.stream)
    history = await store.read("a")
    assert len(history.events) == 1
    (bad,) = history.unreadable
    assert bad.seq == 2 and "not JSON" in bad.reason
    assert history.last_seq == 2


async def test_experiments_are_listed_from_their_requests(store: EventStore) -> None:
    for exp in ("x1", "x2"):
        await store.append(req(exp))
    assert await store.experiments() == ["x1", "x2"]


async def test_tail_sees_only_new_events(store: EventStore) -> None:
    await store.append(req("old"))
    seen: list[StoredEvent | Unreadable] = []

    async def consume() -> None:
        async for item in store.tail():
            seen.append(item)
            if len(seen) == 2:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    await store.append(req("new1"))
    await store.js.publish("greenai.evt.new2.run.requested", b"nope", stream=store.stream)
    await asyncio.wait_for(task, 10)
    assert isinstance(seen[0], StoredEvent) and seen[0].envelope.experiment_id == "new1"
    assert isinstance(seen[1], Unreadable)


async def test_read_everything_spans_experiments(store: EventStore) -> None:
    for i in range(25):
        await store.append(req(f"e{i}"))
    got = [e.envelope.experiment_id async for e in store.read_everything()]
    assert got == [f"e{i}" for i in range(25)]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[str]:
    """A server of its own: these streams take the log's subjects."""
    port, http = free_ports(2)
    node = NatsNode("own", tmp_path / "nats", port, http)
    node.start()
    yield node.url
    node.stop()


async def test_an_existing_stream_is_reconciled(own_server: str) -> None:
    nc = await nats.connect(own_server)
    js = nc.jetstream()
    await js.add_stream(api.StreamConfig(name="OLD", subjects=["greenai.evt.>"], duplicate_window=120))
    try:
        store = await EventStore.connect(own_server, "OLD", limits=StreamLimits(max_msg_bytes=300_000, max_age_s=86400))
        await store.close()
        config = (await js.stream_info("OLD")).config
        assert config.duplicate_window == 3600 and config.max_msg_size == 300_000 and config.max_age == 86400
    finally:
        await nc.close()


async def test_a_stream_that_cannot_be_reconciled_says_why(own_server: str) -> None:
    nc = await nats.connect(own_server)
    js = nc.jetstream()
    await js.add_stream(api.StreamConfig(name="MEM", subjects=["greenai.evt.>"], storage=api.StorageType.MEMORY))
    try:
        with pytest.raises(StreamMismatch, match="storage memory"):
            await EventStore.connect(own_server, "MEM")
        with pytest.raises(StreamMismatch, match="replicas"):  # one server cannot hold 3 replicas
            await EventStore.connect(own_server, "R3", limits=StreamLimits(replicas=3))
    finally:
        await nc.close()


async def test_an_oversized_event_is_refused_before_it_is_sent(store: EventStore) -> None:
    big = new_event("a", RunRequested(model="m" * 300_000, dataset="arc_easy", episodes=1), producer="t")
    with pytest.raises(EventTooLarge, match="limit is"):
        await store.append(big)
    assert (await store.read("a")).events == []
