"""The agent's side of capabilities: announce at start, then every interval as a heartbeat.

An announcement that cannot be appended (NATS away, the log refusing) is logged once and tried
again at the next beat; it never stops the agent from taking jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from greenai.events import new_event
from greenai.events.capabilities import AgentAnnounced, agents_experiment
from greenai.shared.connection import one_line
from greenai.shared.eventstore import EventStore


async def announce_forever(
    store: EventStore, build: Callable[[], AgentAnnounced], stop: asyncio.Event, log: Any
) -> None:
    last_error = ""
    while not stop.is_set():
        data = await asyncio.to_thread(build)
        try:
            await store.append(new_event(agents_experiment(data.agent), data, producer=data.instance))
            if last_error:
                log.info("announcing again")
            last_error = ""
        except Exception as exc:  # a missed beat is not fatal (NatsUnavailable included)
            if one_line(exc) != last_error:
                last_error = one_line(exc)
                log.warning("could not announce; next beat tries again", error=last_error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), data.interval_s)
