"""The event log: one JetStream stream, the only store of record.

Appends carry `Nats-Msg-Id` (the event id, so a retried append is stored once) and, when the
writer derived its decision from the log, the sequence it read last for that experiment
(`Nats-Expected-Last-Subject-Sequence` over `greenai.evt.<exp>.>`): a concurrent writer makes the
append fail with `ConcurrencyError` instead of silently interleaving decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, BadRequestError, NotFoundError

from greenai.events import Envelope, MalformedEvent, decode
from greenai.events.subjects import PREFIX, all_events, experiment_filter, experiment_of_subject

WRONG_LAST_SEQUENCE = 10071


class ConcurrencyError(RuntimeError):
    """Someone appended to the experiment after we read it; re-read and decide again."""


class PermissionDenied(PermissionError):
    """The server refused a publish: this identity may not produce that event (or use that API)."""


class EventTooLarge(ValueError):
    """An event over the size limit: refused before it is sent, so the log never holds it."""


@dataclass(frozen=True)
class StreamLimits:
    """What the stream holds at most; reconciled onto an existing stream at start."""

    max_msg_bytes: int = 512 * 1024
    max_bytes: int | None = None
    max_age_s: float | None = None
    replicas: int = 1


_DENIED = re.compile(r'Permissions Violation for Publish to "([^"]+)"', re.IGNORECASE)


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    envelope: Envelope


@dataclass(frozen=True)
class Unreadable:
    """A message in the log that is not a valid event; replays skip it and say so."""

    seq: int
    subject: str
    reason: str


@dataclass
class History:
    experiment_id: str
    events: list[StoredEvent] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    last_seq: int = 0

    @property
    def envelopes(self) -> list[Envelope]:
        return [e.envelope for e in self.events]


@dataclass(frozen=True)
class AppendResult:
    seq: int
    duplicate: bool


class EventStore:
    def __init__(
        self,
        nc: NATS,
        stream: str,
        duplicate_window_s: float = 3600.0,
        *,
        max_event_bytes: int = 256 * 1024,
        limits: StreamLimits | None = None,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.stream = stream
        self.duplicate_window_s = duplicate_window_s
        self.max_event_bytes = max_event_bytes
        self.limits = limits or StreamLimits()
        self._denied: dict[str, list[asyncio.Future[str]]] = {}

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
        max_event_bytes: int = 256 * 1024,
        limits: StreamLimits | None = None,
        wait_for_stream_s: float = 30.0,
    ) -> EventStore:
        """`options`: more `nats.connect` keywords (credentials, TLS, inbox prefix). `manage_stream`: create
        or reconcile the stream (the admin identity); otherwise only wait for it to exist."""
        holder: list[EventStore] = []

        async def on_error(exc: Exception) -> None:
            if holder:
                holder[0]._on_error(exc)

        servers = [u.strip() for u in url.split(",") if u.strip()]
        nc = await nats.connect(
            servers, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5, drain_timeout=5,
            error_cb=on_error, **(options or {}),
        )  # fmt: skip
        store = cls(nc, stream, duplicate_window_s, max_event_bytes=max_event_bytes, limits=limits)
        holder.append(store)
        if manage_stream:
            await store.ensure_stream()
        else:
            await store.wait_for_stream(wait_for_stream_s)
        return store

    def _on_error(self, exc: Exception) -> None:
        """nats-py reports a refused publish only here, asynchronously: fail the append waiting on it."""
        match = _DENIED.search(str(exc))
        if match:
            for future in self._denied.pop(match.group(1), []):
                if not future.done():
                    future.set_result(str(exc))

    async def wait_for_stream(self, timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                await self.js.stream_info(self.stream)
                return
            except NotFoundError:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"the stream {self.stream} does not exist and this identity may not create it: "
                        "start `greenai up` (or any command run as admin) first"
                    ) from None
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.nc.drain()

    def stream_config(self) -> api.StreamConfig:
        limits = self.limits
        return api.StreamConfig(
            name=self.stream,
            subjects=[all_events()],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            duplicate_window=self.duplicate_window_s,
            allow_direct=True,
            max_msg_size=limits.max_msg_bytes,
            max_bytes=limits.max_bytes if limits.max_bytes is not None else -1,
            max_age=limits.max_age_s if limits.max_age_s is not None else 0,
            num_replicas=limits.replicas,
        )

    async def ensure_stream(self) -> None:
        """Create the stream, or reconcile an existing one's settings (duplicate window, limits, replicas)."""
        config = self.stream_config()
        try:
            info = await self.js.stream_info(self.stream)
        except NotFoundError:
            try:
                await self.js.add_stream(config)
                return
            except BadRequestError as exc:  # created by a concurrent process in between
                if "already in use" not in str(exc.description):
                    raise
            info = await self.js.stream_info(self.stream)
        have = info.config
        wanted = (config.duplicate_window, config.max_msg_size, config.max_bytes, config.max_age, config.num_replicas)
        current = (have.duplicate_window, have.max_msg_size, have.max_bytes, have.max_age, have.num_replicas)
        if wanted != current or have.subjects != config.subjects:
            try:
                await self.js.update_stream(config)
            except APIError as exc:
                raise RuntimeError(
                    f"stream {self.stream} exists with settings that cannot be changed to ours: {exc.description}"
                ) from exc

    async def append(self, event: Envelope, *, expected_last_seq: int | None = None) -> AppendResult:
        body = event.encode()
        if len(body) > self.max_event_bytes:
            raise EventTooLarge(
                f"{event.type} event is {len(body):,} bytes; the limit is {self.max_event_bytes:,} (max_event_bytes)"
            )
        headers = {"Nats-Msg-Id": str(event.event_id)}
        if expected_last_seq is not None:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_seq)
            headers["Nats-Expected-Last-Subject-Sequence-Subject"] = experiment_filter(event.experiment_id)
        denied: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._denied.setdefault(event.subject, []).append(denied)
        publish = asyncio.ensure_future(self.js.publish(event.subject, body, stream=self.stream, headers=headers))
        try:
            await asyncio.wait({publish, denied}, return_when=asyncio.FIRST_COMPLETED)
            if denied.done() and not publish.done():
                publish.cancel()
                raise PermissionDenied(f"the server refused {event.type}: {denied.result()}")
            ack = await publish
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise ConcurrencyError(str(exc.description)) from exc
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

    async def read(self, experiment_id: str) -> History:
        """Every event of one experiment, in order, from the first."""
        history = History(experiment_id)
        async for msg in self._read_all(experiment_filter(experiment_id)):
            seq = msg.metadata.sequence.stream
            history.last_seq = seq
            try:
                history.events.append(StoredEvent(seq, decode(msg.data)))
            except MalformedEvent as exc:
                history.unreadable.append(Unreadable(seq, msg.subject, str(exc)))
        return history

    async def read_everything(self, subject_filter: str | None = None) -> AsyncIterator[StoredEvent]:
        """All valid events under a filter (default: the whole log), for cross-experiment folds."""
        async for msg in self._read_all(subject_filter or all_events()):
            try:
                yield StoredEvent(msg.metadata.sequence.stream, decode(msg.data))
            except MalformedEvent:
                continue

    async def _read_all(self, subject_filter: str) -> AsyncIterator[Msg]:
        """Every message under the filter, from the first, through an ordered consumer (the
        client's fastest path: server push with flow control, gaps detected and repaired)."""
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_msg(msg: Msg) -> None:
            queue.put_nowait(msg)

        sub = await self.js.subscribe(
            subject_filter,
            stream=self.stream,
            cb=on_msg,
            ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.ALL,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        try:
            info = await sub.consumer_info()
            if not info.num_pending and not (info.delivered and info.delivered.consumer_seq):
                return  # nothing under this filter
            while True:
                msg = await asyncio.wait_for(queue.get(), timeout=30.0)
                yield msg
                if msg.metadata.num_pending == 0:
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def experiments(self) -> list[str]:
        """Experiment ids, from the subjects of their run requests."""
        info = await self.js.stream_info(self.stream, subjects_filter=f"{PREFIX}.*.run.requested")
        subjects = info.state.subjects or {}
        found = {experiment_of_subject(s) for s in subjects}
        return sorted(e for e in found if e)

    async def tail(
        self, subject_filter: str | None = None, *, from_start: bool = False
    ) -> AsyncIterator[StoredEvent | Unreadable]:
        """New events as they are appended (and, with from_start, the past ones first)."""
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_msg(msg: Msg) -> None:
            await queue.put(msg)

        policy = api.DeliverPolicy.ALL if from_start else api.DeliverPolicy.NEW
        sub = await self.js.subscribe(
            subject_filter or all_events(), stream=self.stream, cb=on_msg, ordered_consumer=True, deliver_policy=policy
        )
        try:
            while True:
                msg = await queue.get()
                seq = msg.metadata.sequence.stream
                try:
                    yield StoredEvent(seq, decode(msg.data))
                except MalformedEvent as exc:
                    yield Unreadable(seq, msg.subject, str(exc))
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
