"""The event log: one JetStream stream, the only store of record.

Appends carry `Nats-Msg-Id` (the event id, so a retried append is stored once) and, when the
writer derived its decision from the log, the sequence it read last for that experiment
(`Nats-Expected-Last-Subject-Sequence` over `greenai.evt.<exp>.>`): a concurrent writer makes the
append fail with `ConcurrencyError` instead of silently interleaving decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

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
    def __init__(self, nc: NATS, stream: str, duplicate_window_s: float = 3600.0) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.stream = stream
        self.duplicate_window_s = duplicate_window_s

    @classmethod
    async def connect(
        cls, url: str, stream: str, duplicate_window_s: float = 3600.0, name: str = "greenai"
    ) -> EventStore:
        nc = await nats.connect(url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5, drain_timeout=5)
        store = cls(nc, stream, duplicate_window_s)
        await store.ensure_stream()
        return store

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.nc.drain()

    async def ensure_stream(self) -> None:
        config = api.StreamConfig(
            name=self.stream,
            subjects=[all_events()],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            duplicate_window=self.duplicate_window_s,
            allow_direct=True,
        )
        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            try:
                await self.js.add_stream(config)
            except BadRequestError as exc:  # created by a concurrent process in between
                if "already in use" not in str(exc.description):
                    raise

    async def append(self, event: Envelope, *, expected_last_seq: int | None = None) -> AppendResult:
        headers = {"Nats-Msg-Id": str(event.event_id)}
        if expected_last_seq is not None:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_seq)
            headers["Nats-Expected-Last-Subject-Sequence-Subject"] = experiment_filter(event.experiment_id)
        try:
            ack = await self.js.publish(event.subject, event.encode(), stream=self.stream, headers=headers)
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise ConcurrencyError(str(exc.description)) from exc
            raise
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
