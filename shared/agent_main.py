"""Running a step agent as a process: connect with the role's own identity, announce, take jobs.

The built-in agents and third-party ones (see examples/cast_agent.py) start the same way: a role
name and a function that builds the agent's `JobSpec` from the settings. Nothing else in GreenAI
has to know the agent exists; it joins by announcing what it offers.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

from greenai.shared.bus import ensure_nats, open_store
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore, NatsUnavailable
from greenai.shared.logging import configure_logging, get_logger
from greenai.shared.runtime import JobSpec, JobWorker, install_stop_signals

SpecFactory = Callable[[Settings], JobSpec]


async def serve_process(
    role: str, settings: Settings, body: Callable[[EventStore, asyncio.Event], Awaitable[None]]
) -> None:
    """Connect as `role`, run `body` until a stop signal, close everything: the frame of every agent."""
    bus = ensure_nats(settings)
    # an agent may start before anyone created the log: it waits (a day) until an admin has (`greenai up`/`run`)
    store = await open_store(settings, bus.url, role, role=role, wait_for_stream_s=86400.0)
    stop = asyncio.Event()
    install_stop_signals(stop)
    log = get_logger(role)
    log.info("agent up", nats=bus.url, pid=os.getpid())
    try:
        await body(store, stop)
    finally:
        log.info("agent down")
        await store.close()
        bus.close()


async def serve_worker(role: str, make_spec: SpecFactory, settings: Settings) -> None:
    async def body(store: EventStore, stop: asyncio.Event) -> None:
        spec = make_spec(settings)
        await JobWorker(store, spec, ack_wait_s=settings.ack_wait_s, max_attempts=settings.max_attempts).serve(stop)

    await serve_process(role, settings, body)


def run_worker(role: str, make_spec: SpecFactory, settings: Settings | None = None) -> None:
    """Blocking entry point: settings from GREENAI_* (and the config file), JSON logs, exit 3 when NATS
    stays away past the outage budget (one line, no traceback)."""
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(serve_worker(role, make_spec, settings))
    except NatsUnavailable as exc:
        get_logger(role).error("exiting: NATS unavailable", error=str(exc))
        sys.exit(3)
