"""Riding out NATS outages with a real nats-server that is killed and restarted at the same port."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.experiment import RunRequested
from greenai.shared.eventstore import EventStore, NatsUnavailable
from greenai.shared.nats_cluster import NatsNode, free_ports


def req(exp: str, key: str) -> object:
    return new_event(exp, RunRequested(model="m", dataset="arc_easy", episodes=1), producer="t", key=key)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NatsNode]:
    port, http = free_ports(2)
    server = NatsNode("solo", tmp_path / "nats", port, http)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def store(node: NatsNode) -> AsyncIterator[EventStore]:
    s = await EventStore.connect(node.url, "OUTAGE", outage_budget_s=30)
    yield s
    await s.close()


async def test_append_and_read_ride_out_a_server_killed_and_restarted(node: NatsNode, store: EventStore) -> None:
    changes: list[tuple[str, float | None]] = []
    store.watch.on_change(lambda state, outage: changes.append((state, outage)))
    await store.append(req("a", "1"))
    node.kill()

    def restart_later() -> float:
        time.sleep(2.0)
        node.start()
        return time.monotonic()

    restarted = asyncio.get_running_loop().run_in_executor(None, restart_later)
    result = await store.append(req("a", "2"))  # waits through the outage
    appended = time.monotonic()
    recovered_s = appended - await restarted
    history = await store.read("a")
    assert [e.seq for e in history.events] == [1, result.seq] and not result.duplicate
    assert [c[0] for c in changes] == ["disconnected", "reconnected"]  # once each, not per retry
    assert (changes[1][1] or 0) >= 1.5
    print(f"append completed {recovered_s:.2f} s after the server was back; outage {changes[1][1]:.1f} s")


async def test_past_the_budget_operations_fail_with_one_line(node: NatsNode) -> None:
    store = await EventStore.connect(node.url, "OUTAGE", outage_budget_s=2)
    try:
        await store.append(req("a", "1"))
        node.kill()
        start = time.monotonic()
        with pytest.raises(NatsUnavailable) as failure:
            await store.append(req("a", "2"))
        elapsed = time.monotonic() - start
        message = str(failure.value)
        assert "\n" not in message and "NATS unreachable" in message and "outage budget of 2 s" in message
        assert 1.5 <= elapsed < 10
        with pytest.raises(NatsUnavailable):
            await store.read("a")
    finally:
        await store.close()


async def test_connecting_to_nothing_fails_within_the_budget() -> None:
    (port,) = free_ports(1)
    start = time.monotonic()
    with pytest.raises(NatsUnavailable, match="while trying to connect"):
        await EventStore.connect(f"nats://127.0.0.1:{port}", "X", outage_budget_s=1.5)
    assert time.monotonic() - start < 6


async def test_a_replay_of_a_big_log_is_not_cut_by_a_timeout(store: EventStore) -> None:
    for i in range(300):
        await store.append(req("big", str(i)))
    history = await store.read("big")
    assert len(history.events) == 300 and history.last_seq == 300


def test_an_agent_exits_non_zero_with_one_line_when_nats_stays_away(node: NatsNode, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env.update(
        GREENAI_NATS_URL=node.url, GREENAI_WORK_DIR=str(tmp_path / "work"), GREENAI_OUTAGE_BUDGET_S="3",
        GREENAI_STREAM="AGENTS", GREENAI_LOG_FORMAT="json",
    )  # fmt: skip
    agent = subprocess.Popen(
        [sys.executable, "-m", "greenai", "agent", "pruning"], env=env, stderr=subprocess.PIPE, text=True
    )
    assert agent.stderr is not None
    lines: list[str] = []
    try:
        for line in agent.stderr:
            lines.append(line)
            if '"serving"' in line:
                break
        else:
            pytest.fail("the agent never served: " + "".join(lines))
        node.kill()
        start = time.monotonic()
        rest = agent.stderr.read()
        code = agent.wait(30)
    finally:
        if agent.poll() is None:
            agent.kill()
    elapsed = time.monotonic() - start
    assert code == 3, rest
    assert "Traceback" not in rest
    last = [line for line in rest.splitlines() if line.strip()][-1]
    assert "exiting: NATS unavailable" in last and "outage budget of 3 s" in last
    assert 2.5 <= elapsed < 20
    assert sum("NATS unreachable, retrying" in line for line in rest.splitlines()) == 1


async def test_tail_follows_the_log_across_a_server_restart(node: NatsNode, store: EventStore) -> None:
    seen: list[int] = []

    async def follow() -> None:
        async for item in store.tail(from_start=True):
            seen.append(item.seq)

    task = asyncio.create_task(follow())
    try:
        await store.append(req("t", "1"))
        node.kill()
        await asyncio.get_running_loop().run_in_executor(None, node.start)
        await store.append(req("t", "2"))
        async with asyncio.timeout(15):
            while len(seen) < 2:
                await asyncio.sleep(0.1)
        assert seen == [1, 2]
    finally:
        task.cancel()
