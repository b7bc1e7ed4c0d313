"""The coordinator's view of what the agents offer: every live instance's latest announcement, folded.

Each role announces on its own subject (`_agents-<role>`, pinned by its NATS permissions), so several
instances of one role (a GPU host and a CPU host both running `quantization`) share a subject and a
last-per-subject read would see only the newest of them. The read has two passes whose cost does
not grow with the log: the newest announcement of each role (last per subject) gives the longest
heartbeat interval in play; then everything announced within `GRACE` such intervals (plus one, for
clock skew) is read by start time: every instance that can still count as live has announced in that
window, so each one's offer counts (`projections.capabilities.Offers`: the union).

An instance whose interval is longer than every role's newest announcement's may be missed until its
role's next announcement; the agents of one deployment share `announce_interval_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from nats.aio.msg import Msg
from nats.js import api

from greenai.events import MalformedEvent, decode
from greenai.events.capabilities import AgentAnnounced
from greenai.events.subjects import type_filter
from greenai.projections.capabilities import GRACE, Catalogue, Offers, apply
from greenai.shared.eventstore import EventStore

ANNOUNCEMENTS = type_filter(AgentAnnounced.TYPE)
# at most this many announcements are read per pass: a role flooding its subject with fake
# instances cannot make a decision read without end
MAX_READ = 5000


async def _read_into(
    catalogue: Catalogue, store: EventStore, config: api.ConsumerConfig, timeout_s: float
) -> Catalogue:
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        queue.put_nowait(msg)

    sub = await store.js.subscribe(ANNOUNCEMENTS, stream=store.stream, cb=on_msg, ordered_consumer=True, config=config)
    try:
        info = await sub.consumer_info()
        if not info.num_pending and not (info.delivered and info.delivered.consumer_seq):
            return catalogue
        for _ in range(MAX_READ):
            msg = await asyncio.wait_for(queue.get(), timeout_s)
            with contextlib.suppress(MalformedEvent):
                apply(catalogue, decode(msg.data))
            if msg.metadata.num_pending == 0:
                break
        return catalogue
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


def window(catalogue: Catalogue, now: datetime) -> timedelta | None:
    """How far back a live instance's latest announcement can lie, judged by the longest interval among
    the roles' newest announcements that are still live; None when none is (the others are older still)."""
    live = [
        s.announced.interval_s
        for s in catalogue.instances.values()
        if now - s.at <= timedelta(seconds=GRACE * s.announced.interval_s)
    ]
    return timedelta(seconds=(GRACE + 1) * max(live)) if live else None


async def read_catalogue(store: EventStore, timeout_s: float = 10.0, now: datetime | None = None) -> Catalogue:
    """Every instance's latest announcement within the liveness window (and each role's newest)."""
    newest = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT)
    catalogue = await _read_into(Catalogue(), store, newest, timeout_s)
    now = now or datetime.now(UTC)
    back = window(catalogue, now)
    if back is None:
        return catalogue
    recent = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_TIME, opt_start_time=now - back)
    return await _read_into(catalogue, store, recent, timeout_s)


async def live_offers(store: EventStore, wait_s: float = 0.0, ready: Callable[[Offers], bool] = bool) -> Offers:
    """What live agents offer now; with `wait_s`, wait up to that long until the offers are `ready`
    (agents started with the coordinator announce within seconds)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        offers = (await read_catalogue(store)).live(datetime.now(UTC))
        if ready(offers) or asyncio.get_running_loop().time() >= deadline:
            return offers
        await asyncio.sleep(1.0)
