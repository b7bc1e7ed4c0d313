"""The coordinator's view of what the agents offer: the latest announcement of each role, folded.

Read at each decision with a last-per-subject consumer (one subject per role), so the cost does not
grow with the log: heartbeats pile up in the stream, but only each role's newest one is read.
Several instances of one role are one entry here (the newest); their methods are the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import api

from greenai.events import MalformedEvent, decode
from greenai.events.capabilities import AgentAnnounced
from greenai.events.subjects import type_filter
from greenai.projections.capabilities import Catalogue, Offers, apply
from greenai.shared.eventstore import EventStore

ANNOUNCEMENTS = type_filter(AgentAnnounced.TYPE)


async def read_catalogue(store: EventStore, timeout_s: float = 10.0) -> Catalogue:
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        queue.put_nowait(msg)

    sub = await store.js.subscribe(
        ANNOUNCEMENTS, stream=store.stream, cb=on_msg, ordered_consumer=True,
        config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT),
    )  # fmt: skip
    catalogue = Catalogue()
    try:
        info = await sub.consumer_info()
        if not info.num_pending and not (info.delivered and info.delivered.consumer_seq):
            return catalogue
        while True:
            msg = await asyncio.wait_for(queue.get(), timeout_s)
            with contextlib.suppress(MalformedEvent):
                apply(catalogue, decode(msg.data))
            if msg.metadata.num_pending == 0:
                return catalogue
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def live_offers(store: EventStore, wait_s: float = 0.0, ready: Callable[[Offers], bool] = bool) -> Offers:
    """What live agents offer now; with `wait_s`, wait up to that long until the offers are `ready`
    (agents started with the coordinator announce within seconds)."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        offers = (await read_catalogue(store)).live(datetime.now(UTC))
        if ready(offers) or asyncio.get_running_loop().time() >= deadline:
            return offers
        await asyncio.sleep(1.0)
