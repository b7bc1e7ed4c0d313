"""The event log: one JetStream stream, the only store of record.

Appends carry `Nats-Msg-Id` (the event id, so a retried append is stored once) and, when the
writer derived its decision from the log, the sequence it read last for that experiment
(`Nats-Expected-Last-Subject-Sequence` over `greenai.evt.<exp>.>`): a concurrent writer makes the
append fail with `ConcurrencyError` instead of silently interleaving decisions.

Every operation rides out a NATS outage: it is retried across the client's reconnects for up to
`outage_budget_s`, then fails with `NatsUnavailable` (one line). An append is safe to repeat (the
message id makes a repeat a duplicate; a repeat refused as stale is looked up in the log).

The store is assembled from its sides: the append side (`eventstore_append`), the read side
(`eventstore_read`) and the records they exchange (`eventstore_records`); this module connects, owns
the stream, and re-exports every name it always had, so `greenai.shared.eventstore` stays the one
import.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from greenai.shared.connection import ConnectionWatch, NatsUnavailable, quiet_nats_logging
from greenai.shared.eventstore_append import _DENIED as _DENIED
from greenai.shared.eventstore_append import MESSAGE_TOO_LARGE as MESSAGE_TOO_LARGE
from greenai.shared.eventstore_append import PUBLISH_TIMEOUT_S as PUBLISH_TIMEOUT_S
from greenai.shared.eventstore_append import WRONG_LAST_SEQUENCE as WRONG_LAST_SEQUENCE
from greenai.shared.eventstore_append import EventAppender
from greenai.shared.eventstore_read import REPLAY_RETRYABLE as REPLAY_RETRYABLE
from greenai.shared.eventstore_read import STALL_S as STALL_S
from greenai.shared.eventstore_read import EventReader
from greenai.shared.eventstore_read import _Interrupted as _Interrupted
from greenai.shared.eventstore_records import AppendResult as AppendResult
from greenai.shared.eventstore_records import ConcurrencyError, EventTooLarge, PermissionDenied
from greenai.shared.eventstore_records import History as History
from greenai.shared.eventstore_records import StoredEvent as StoredEvent
from greenai.shared.eventstore_records import Unreadable as Unreadable
from greenai.shared.stream_settings import StreamLimits, StreamMismatch, reconcile_stream, stream_config

# The `X as X` imports above keep every name this module defined before its split importable from here.
__all__ = [
    "ConcurrencyError", "EventStore", "EventTooLarge", "NatsUnavailable", "PermissionDenied", "StreamLimits",
    "StreamMismatch",
]  # fmt: skip


class EventStore(EventReader, EventAppender):
    """One connection to the log: append (`EventAppender`), read and follow (`EventReader`)."""

    def __init__(
        self,
        nc: NATS,
        stream: str,
        duplicate_window_s: float = 3600.0,
        *,
        max_event_bytes: int = 256 * 1024,
        limits: StreamLimits | None = None,
        watch: ConnectionWatch | None = None,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.stream = stream
        self.duplicate_window_s = duplicate_window_s
        self.max_event_bytes = max_event_bytes
        self.limits = limits or StreamLimits()
        self.watch = watch or ConnectionWatch(nc.connected_url.netloc if nc.connected_url else "?", "greenai", 120.0)
        if watch is None:
            self.watch.connected()
        self._denied: dict[str, list[asyncio.Future[str]]] = {}

    @property
    def replicas(self) -> int:
        """Replicas of the stream; consumers get as many."""
        return self.limits.replicas

    @classmethod
    async def connect(
        cls,
        url: str,
        stream: str,
        duplicate_window_s: float = 3600.0,
        name: str = "greenai",
        *,
        options: dict[str, Any] | None = None,
        manage_stream: bool = True,
        outage_budget_s: float | None = None,
        max_event_bytes: int = 256 * 1024,
        limits: StreamLimits | None = None,
        wait_for_stream_s: float | None = None,
    ) -> EventStore:
        """Connect to `url` (one URL, or a comma-separated list: the servers of a cluster) and make
        sure the stream is there. `options`: more `nats.connect` keywords (credentials, TLS, inbox
        prefix; ping settings). `manage_stream`: create or reconcile the stream (the admin identity);
        otherwise only wait for it to exist (`wait_for_stream_s`, default the outage budget).
        `outage_budget_s`: how long any operation retries across a disconnect before it raises
        `NatsUnavailable`; the first connect gets as long. None: the configured one
        (GREENAI_OUTAGE_BUDGET_S, default 120 s)."""
        if outage_budget_s is None:
            from greenai.shared.config import Settings

            outage_budget_s = Settings().outage_budget_s
        quiet_nats_logging()
        servers = [u.strip() for u in url.split(",") if u.strip()]
        if not servers:
            raise ValueError("no NATS server URL given")
        watch = ConnectionWatch(",".join(servers), name, outage_budget_s)
        holder: list[EventStore] = []

        async def on_error(exc: Exception) -> None:
            await watch.on_error(exc)
            if holder:
                holder[0]._on_error(exc)

        settings: dict[str, Any] = {
            "name": name, "max_reconnect_attempts": -1, "reconnect_time_wait": 0.5, "connect_timeout": 2.0,
            "drain_timeout": 5, "ping_interval": 5, "max_outstanding_pings": 2,  # a frozen server is left in ~15 s
        }  # fmt: skip
        settings.update(options or {})
        settings.update(
            error_cb=on_error,
            disconnected_cb=watch.on_disconnected,
            reconnected_cb=watch.on_reconnected,
            closed_cb=watch.on_closed,
        )
        try:
            nc = await asyncio.wait_for(nats.connect(servers, **settings), timeout=outage_budget_s)
        except TimeoutError:
            raise watch.unavailable("connect", outage_budget_s) from None
        watch.connected()
        store = cls(nc, stream, duplicate_window_s, max_event_bytes=max_event_bytes, limits=limits, watch=watch)
        holder.append(store)
        try:
            if manage_stream:
                await store.ensure_stream()
            else:
                await store.wait_for_stream(outage_budget_s if wait_for_stream_s is None else wait_for_stream_s)
        except BaseException:
            await store.close()
            raise
        return store

    async def wait_for_stream(self, timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                info = await self.watch.retrying("look up the stream", lambda: self.js.stream_info(self.stream))
                # consumers follow the stream as an admin made it (an agent's own setting may say 1 replica)
                if info.config.num_replicas:
                    self.limits = replace(self.limits, replicas=info.config.num_replicas)
                return
            except NotFoundError:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"the stream {self.stream} does not exist and this identity may not create it: "
                        "start `greenai up` (or any command run as admin) first"
                    ) from None
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        """Drain when connected (pending acks go out); during an outage close at once."""
        self.watch.closing = True
        if self.nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), timeout=10.0)
        if not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), timeout=5.0)

    def stream_config(self) -> api.StreamConfig:
        return stream_config(self.stream, self.duplicate_window_s, self.limits)

    async def ensure_stream(self) -> None:
        """Create the stream, or reconcile an existing one's settings (duplicate window, limits,
        replicas, subjects). What the server cannot change (storage, retention) raises
        `StreamMismatch` naming the setting, instead of running on a log that is not what we think."""
        config = self.stream_config()
        await self.watch.retrying("create or reconcile the stream", lambda: reconcile_stream(self.js, config))

    async def fetch(self, sub: Any, batch: int = 1, timeout: float = 1.0) -> list[Msg]:
        """Up to `batch` messages from a pull subscription; [] when there are none. Across an outage
        it waits for the reconnect (within the budget, then `NatsUnavailable`)."""

        async def once() -> list[Msg]:
            try:
                msgs: list[Msg] = await sub.fetch(batch, timeout=timeout)
                return msgs
            except nats.errors.TimeoutError:
                if self.nc.is_connected:
                    return []  # simply nothing to do
                raise

        return await self.watch.retrying("fetch work", once)
