"""Riding out NATS outages: the connection's state as nats-py's callbacks report it, and retrying an
operation across a disconnect within an outage budget.

nats-py reconnects by itself (forever, with our settings); what it does not do is retry a request
that timed out while it was away, or tell a person what is going on in one line. `ConnectionWatch`
does both: each state change (down, back, closed) is logged once, without a traceback, and
`retrying()` repeats an idempotent operation with backoff until the connection has been down for
longer than the budget, then raises `NatsUnavailable` with one line that says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import nats.errors
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from greenai.shared.logging import get_logger

T = TypeVar("T")
State = Literal["connecting", "connected", "disconnected", "closed"]
Change = Literal["disconnected", "reconnected", "closed"]
Listener = Callable[[Change, float | None], None]

# Errors after which the same request may succeed once the client is back (or JetStream has a
# leader again): timeouts, no responders (JetStream not ready), a reconnecting or stale
# connection, a full outbound buffer, socket errors, 503 from the JetStream API (a 500 says
# why it will not do it, e.g. 'replicas > 1 not supported in non-clustered mode').
TRANSIENT: tuple[type[BaseException], ...] = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    NoStreamResponseError,  # a stream between leaders
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.SlowConsumerError,
    ServiceUnavailableError,
    asyncio.TimeoutError,
    OSError,
)


class NatsUnavailable(RuntimeError):
    """NATS could not be reached within the outage budget. The message is one line, for a terminal
    or a log; an agent that gets it exits non-zero (another instance, or a restart, carries on)."""


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def quiet_nats_logging() -> None:
    """nats-py logs some errors itself with a full traceback ('nats: encountered error'); our
    callbacks report the same condition once, so its logger only speaks for real bugs."""
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    logging.getLogger("nats.aio.client").setLevel(logging.CRITICAL)


class ConnectionWatch:
    """The connection's state as the client's callbacks report it; logs once per state change."""

    def __init__(self, servers: str, name: str, outage_budget_s: float) -> None:
        self.servers = servers
        self.outage_budget_s = outage_budget_s
        self.state: State = "connecting"
        self.down_since: float | None = time.monotonic()  # not connected yet counts as down
        self.last_outage_s: float | None = None
        self.last_error: str | None = None
        self.reconnects = 0
        self.closing = False
        self.listeners: list[Listener] = []
        self._up = asyncio.Event()
        self._error_logged = False
        self.log = get_logger("nats").bind(client=name, servers=servers)

    def on_change(self, listener: Listener) -> None:
        """`listener(state, outage_s)`: called on 'disconnected' (None) and 'reconnected' (seconds down)."""
        self.listeners.append(listener)

    def _notify(self, state: Change, outage_s: float | None) -> None:
        for listener in list(self.listeners):
            try:
                listener(state, outage_s)
            except Exception as exc:  # a listener's bug must not break the client's callbacks
                self.log.warning("connection listener failed", error=one_line(exc))

    def connected(self) -> None:
        self.state = "connected"
        self.down_since = None
        self._error_logged = False
        self._up.set()

    async def on_disconnected(self) -> None:
        if self.closing or self.state != "connected":
            return
        self.state = "disconnected"
        self.down_since = time.monotonic()
        self._up.clear()
        self.log.warning("NATS unreachable, retrying", budget_s=self.outage_budget_s)
        self._notify("disconnected", None)

    async def on_reconnected(self) -> None:
        outage = time.monotonic() - self.down_since if self.down_since is not None else 0.0
        self.last_outage_s = outage
        self.reconnects += 1
        self.connected()
        self.log.info("NATS reconnected", after_s=round(outage, 1))
        self._notify("reconnected", outage)

    async def on_error(self, exc: Exception) -> None:
        self.last_error = one_line(exc)
        if not self._error_logged and not self.closing:  # the first error of an outage, not every retry
            self._error_logged = True
            self.log.warning("NATS connection error", error=self.last_error)

    async def on_closed(self) -> None:
        self.state = "closed"
        self._up.clear()
        if not self.closing:
            self.log.warning("NATS connection closed")
        self._notify("closed", None)

    def outage_s(self) -> float:
        return time.monotonic() - self.down_since if self.down_since is not None else 0.0

    def unavailable(self, what: str, down_s: float, error: BaseException | str | None = None) -> NatsUnavailable:
        cause = one_line(error) if isinstance(error, BaseException) else error or self.last_error or "no answer"
        return NatsUnavailable(
            f"NATS unreachable for {down_s:.0f} s ({self.servers}), over the outage budget of "
            f"{self.outage_budget_s:.0f} s, while trying to {what}; last error: {cause}"
        )

    async def retrying(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        """`op()` until it succeeds; transient failures are retried with backoff while the outage
        (measured from the earlier of the first failure and the disconnect) is within the budget.
        `op` must be safe to repeat (appends carry a message id, so a repeat is stored once)."""
        first_failure: float | None = None
        delay = 0.05
        while True:
            if self.state in ("disconnected", "closed") and self.outage_s() >= self.outage_budget_s:
                raise self.unavailable(what, self.outage_s())  # already down too long: no try to wait on
            try:
                return await self._attempt(op)
            except nats.errors.ConnectionClosedError as exc:
                raise self.unavailable(what, 0.0, exc) from None
            except PermissionError:  # an OSError, but a refusal: asking again changes nothing
                raise
            except TRANSIENT as exc:
                now = time.monotonic()
                first_failure = first_failure or now
                start = min(first_failure, self.down_since or now)
                if self.state == "closed" or now - start >= self.outage_budget_s:
                    raise self.unavailable(what, now - start, exc) from None
                await self.wait_up(min(delay, self.outage_budget_s - (now - start)))
                delay = min(delay * 2, 2.0)

    async def _attempt(self, op: Callable[[], Awaitable[T]]) -> T:
        """One try. A try made while disconnected is abandoned soon after the reconnect (it waits on
        a request lost with the old connection) so the next one goes out at once."""
        if self._up.is_set():
            return await op()
        task = asyncio.ensure_future(op())
        up = asyncio.ensure_future(self._up.wait())
        try:
            done, _ = await asyncio.wait({task, up}, return_when=asyncio.FIRST_COMPLETED)
            if task not in done:
                done, _ = await asyncio.wait({task}, timeout=0.5)
            if task in done:
                return task.result()
            raise nats.errors.TimeoutError  # a lost request: retried now that we are back
        finally:
            up.cancel()
            if not task.done():
                task.cancel()

    async def wait_up(self, at_most_s: float) -> bool:
        """Wait until connected (or `at_most_s`); True when connected."""
        if self._up.is_set():
            await asyncio.sleep(max(0.0, at_most_s))  # connected, but the server said 'not now'
            return True
        try:
            await asyncio.wait_for(self._up.wait(), timeout=max(0.01, at_most_s))
            return True
        except TimeoutError:
            return False
