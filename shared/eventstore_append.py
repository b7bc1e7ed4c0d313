"""The append side of the event log: size-checked, idempotent (`Nats-Msg-Id`), optimistic on the
experiment's last sequence, and retried across outages.

A refused publish (permissions) reaches nats-py only through its error callback, asynchronously:
the append waiting on that subject is failed from there (`_on_error`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import APIError

from greenai.events import Envelope
from greenai.events.subjects import experiment_filter
from greenai.shared.connection import ConnectionWatch
from greenai.shared.eventstore_records import (
    AppendResult,
    ConcurrencyError,
    EventTooLarge,
    History,
    PermissionDenied,
)
from greenai.shared.stream_settings import StreamLimits

WRONG_LAST_SEQUENCE = 10071
MESSAGE_TOO_LARGE = 10054
PUBLISH_TIMEOUT_S = 2.0  # one try; a lost answer is retried (the message id makes it harmless)

_DENIED = re.compile(r'Permissions Violation for Publish to "([^"]+)"', re.IGNORECASE)


class EventAppender:
    """Appending to the log; mixed into `EventStore`, which sets the attributes below."""

    js: JetStreamContext
    stream: str
    max_event_bytes: int
    limits: StreamLimits
    watch: ConnectionWatch
    _denied: dict[str, list[asyncio.Future[str]]]
    read: Callable[[str], Awaitable[History]]  # the read side: finds a repeat that looked stale

    def _on_error(self, exc: Exception) -> None:
        """nats-py reports a refused publish only here, asynchronously: fail the append waiting on it."""
        match = _DENIED.search(str(exc))
        if match:
            for future in self._denied.pop(match.group(1), []):
                if not future.done():
                    future.set_result(str(exc))

    def _check_size(self, event: Envelope) -> bytes:
        body = event.encode()
        limit = min(self.max_event_bytes, self.limits.max_msg_bytes)
        if len(body) > limit:
            raise EventTooLarge(f"{event.type} event is {len(body):,} bytes; the limit is {limit:,} (max_event_bytes)")
        return body

    def check_size(self, event: Envelope) -> None:
        """Raise `EventTooLarge` for an event that append would refuse (check a batch before any of it)."""
        self._check_size(event)

    async def append(self, event: Envelope, *, expected_last_seq: int | None = None) -> AppendResult:
        """Append once, whatever the network does: retried across disconnects within the outage budget."""
        body = self._check_size(event)
        headers = {"Nats-Msg-Id": str(event.event_id)}
        if expected_last_seq is not None:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_seq)
            headers["Nats-Expected-Last-Subject-Sequence-Subject"] = experiment_filter(event.experiment_id)
        tries = 0

        async def once() -> AppendResult:
            nonlocal tries
            tries += 1
            try:
                return await self._publish(event, body, headers)
            except ConcurrencyError:
                # a try that timed out may have been stored after all; the repeat then looks stale
                if tries > 1 and (found := await self._find(event)) is not None:
                    return AppendResult(seq=found, duplicate=True)
                raise

        try:
            return await self.watch.retrying(f"append {event.type}", once)
        except nats.errors.MaxPayloadError as exc:
            raise EventTooLarge(f"{event.type} event is {len(body):,} bytes, over the server's max_payload") from exc

    async def _find(self, event: Envelope) -> int | None:
        history = await self.read(event.experiment_id)
        return next((e.seq for e in history.events if e.envelope.event_id == event.event_id), None)

    async def _publish(self, event: Envelope, body: bytes, headers: dict[str, str]) -> AppendResult:
        denied: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._denied.setdefault(event.subject, []).append(denied)
        publish = asyncio.ensure_future(
            self.js.publish(event.subject, body, stream=self.stream, headers=headers, timeout=PUBLISH_TIMEOUT_S)
        )
        try:
            waiters: set[asyncio.Future[Any]] = {publish, denied}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if denied.done() and not publish.done():
                publish.cancel()
                raise PermissionDenied(f"the server refused {event.type}: {denied.result()}")
            ack = await publish
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise ConcurrencyError(str(exc.description)) from exc
            if exc.err_code == MESSAGE_TOO_LARGE:
                raise EventTooLarge(f"{event.type} event refused by the stream: {exc.description}") from exc
            raise
        finally:
            waiting = self._denied.get(event.subject, [])
            if denied in waiting:
                waiting.remove(denied)
            if not waiting:
                self._denied.pop(event.subject, None)
            if not publish.done():
                publish.cancel()
        return AppendResult(seq=ack.seq, duplicate=bool(ack.duplicate))
