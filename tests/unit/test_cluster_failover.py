"""A replicated log on a real 3-node loopback cluster: the stream leader killed, a node frozen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenai.events import new_event
from greenai.events.experiment import RunRequested
from greenai.shared.eventstore import EventStore, StreamLimits
from greenai.shared.nats_cluster import LocalCluster


def req(exp: str, key: str) -> object:
    return new_event(exp, RunRequested(model="m", dataset="arc_easy", episodes=1), producer="t", key=key)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster") as c:
        yield c


async def test_the_cluster_comes_up_and_a_restarted_node_keeps_its_ports(cluster: LocalCluster) -> None:
    assert cluster.meta_leader() in cluster.nodes
    assert cluster.url.count("nats://127.0.0.1:") == 3
    again = LocalCluster(cluster.dir)
    assert again.urls == cluster.urls


async def test_a_replicated_stream_survives_the_kill_of_its_leader(cluster: LocalCluster) -> None:
    store = await EventStore.connect(cluster.url, "R3", limits=StreamLimits(replicas=3), outage_budget_s=30)
    try:
        info = await store.js.stream_info("R3")
        assert info.config.num_replicas == 3
        for i in range(10):
            await store.append(req("a", f"before{i}"))
        leader = cluster.stream_leader("R3")
        assert leader is not None
        cluster.node(leader).kill()
        killed = time.monotonic()
        await store.append(req("a", "after0"))
        failover_s = time.monotonic() - killed
        for i in range(1, 10):
            await store.append(req("a", f"after{i}"))
        history = await store.read("a")
        assert len(history.events) == 20
        new_leader = cluster.stream_leader("R3")
        assert new_leader not in (None, leader)
        print(f"first append after SIGKILL of the stream leader {leader}: {failover_s:.2f} s; new leader {new_leader}")
        cluster.node(leader).start()  # comes back as a follower and catches up
    finally:
        await store.close()


async def append_while_frozen(
    cluster: LocalCluster, stream: str, pick: str, seconds: float = 8.0, enough: int | None = None
) -> tuple[int, float, int]:
    """Freeze (SIGSTOP) a node for `seconds` (or until `enough` appends) while appending every 0.1 s
    through the other two nodes."""
    setup = await EventStore.connect(cluster.url, stream, limits=StreamLimits(replicas=3), outage_budget_s=30)
    await setup.append(req("b", "first"))
    leader = cluster.stream_leader(stream)
    await setup.close()
    assert leader is not None
    frozen = leader if pick == "leader" else next(n for n in cluster.nodes if n != leader)
    others = ",".join(n.url for name, n in cluster.nodes.items() if name != frozen)
    store = await EventStore.connect(others, stream, limits=StreamLimits(replicas=3), outage_budget_s=30)
    try:
        cluster.node(frozen).pause()
        slowest, n, start = 0.0, 0, time.monotonic()
        try:
            while time.monotonic() - start < seconds and (enough is None or n < enough):
                t = time.monotonic()
                await store.append(req("b", f"during{n}"))
                slowest = max(slowest, time.monotonic() - t)
                n += 1
                await asyncio.sleep(0.1)
        finally:
            cluster.node(frozen).resume()
        # right after the resume, a read may be served by the replica that was frozen and is catching up (seen
        # once under load: 1 of 78 events); what must hold is that nothing is lost once it has caught up
        deadline = time.monotonic() + 20.0
        while len(history := (await store.read("b")).events) < n + 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        return n, slowest, len(history)
    finally:
        await store.close()


async def test_a_frozen_follower_does_not_slow_appends(cluster: LocalCluster) -> None:
    n, slowest, stored = await append_while_frozen(cluster, "R3F", "follower")
    assert stored == n + 1 and n >= 20 and slowest < 2.0
    print(f"a follower frozen 8 s: {n} appends, slowest {slowest:.2f} s")


async def test_a_frozen_stream_leader_pauses_appends_only_until_a_new_leader(cluster: LocalCluster) -> None:
    # The re-election takes a few seconds, longer on a loaded machine (CI saw more than 8 s): the leader
    # stays frozen up to 40 s, until 5 appends went through the other two nodes.
    n, slowest, stored = await append_while_frozen(cluster, "R3L", "leader", seconds=40.0, enough=5)
    assert stored == n + 1 and n >= 5  # none lost, and appends went on while it was still frozen
    print(f"the stream leader frozen: {n} appends, slowest {slowest:.2f} s (the re-election)")
