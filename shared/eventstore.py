"""The event log: one JetStream stream, the only store of record.

Appends carry `Nats-Msg-Id` (the event id, so a retried append is stored once) and, when the
writer derived its decision from the log, the sequence it read last for that experiment
(`Nats-Expected-Last-Subject-Sequence` over `greenai.evt.<exp>.>`): a concurrent writer makes the
append fail with `ConcurrencyError` instead of silently interleaving decisions.

Every operation rides out a NATS outage: it is retried across the client's reconnects for up to
`outage_budget_s`, then fails with `NatsUnavailable` (one line). An append is safe to repeat (the
message id makes a repeat a duplicate; a repeat refused as stale is looked up in the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NotFoundError

from greenai.events import Envelope, MalformedEvent, decode
from greenai.events.subjects import PREFIX, all_events, experiment_filter, experiment_of_subject
from greenai.shared.connection import TRANSIENT, ConnectionWatch, NatsUnavailable, quiet_nats_logging
from greenai.shared.stream_settings import StreamLimits, StreamMismatch, reconcile_stream, stream_config

__all__ = [
    "ConcurrencyError", "EventStore", "EventTooLarge", "NatsUnavailable", "PermissionDenied", "StreamLimits",
    "StreamMismatch",
]  # fmt: skip

WRONG_LAST_SEQUENCE = 10071
MESSAGE_TOO_LARGE = 10054
PUBLISH_TIMEOUT_S = 2.0  # one try; a lost answer is retried (the message id makes it harmless)
STALL_S = 10.0  # a replay that receives nothing this long (while connected) is restarted where it was


class ConcurrencyError(RuntimeError):
    """Someone appended to the experiment after we read it; re-read and decide again."""


class PermissionDenied(PermissionError):
    """The server refused a publish: this identity may not produce that event (or use that API)."""


class EventTooLarge(ValueError):
    """An event over the size limit: refused before it is sent, so the log never holds it."""


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


class _Interrupted(Exception):
    """A replay cut short by a reconnect or a stall: start again after the last message."""


REPLAY_RETRYABLE: tuple[type[BaseException], ...] = (*TRANSIENT, _Interrupted)


class EventStore:
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
        client's fastest path: server push with flow control, gaps detected and repaired).

        No overall timeout: a replay ends when the server says nothing is pending. A replay cut
        by a disconnect, or one that stalls (nothing for STALL_S while connected), starts again
        after the last message it yielded; the outage budget counts only time without progress."""
        last = 0
        failed_since: float | None = None
        while True:
            try:
                async for msg in self._replay_from(subject_filter, last + 1):
                    failed_since = None
                    last = msg.metadata.sequence.stream
                    yield msg
                return
            except REPLAY_RETRYABLE as exc:
                now = asyncio.get_running_loop().time()
                failed_since = failed_since or now
                down = max(now - failed_since, self.watch.outage_s())
                if self.watch.state == "closed" or down >= self.watch.outage_budget_s:
                    raise self.watch.unavailable(f"read {subject_filter}", down, exc) from None
                await self.watch.wait_up(0.2)

    async def _replay_from(self, subject_filter: str, start_seq: int) -> AsyncIterator[Msg]:
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        sub = await self._ordered(subject_filter, start_seq, queue)
        reconnects = self.watch.reconnects
        try:
            info = await sub.consumer_info()
            if not info.num_pending and not (info.delivered and info.delivered.consumer_seq):
                return  # nothing (more) under this filter
            idle = 0.0
            while True:
                try:
                    msg = await asyncio.wait_for(queue.get(), timeout=0.5)
                except TimeoutError:
                    idle += 0.5
                    if self.watch.reconnects != reconnects or not self.nc.is_connected:
                        raise _Interrupted("the connection dropped during a replay") from None
                    if idle >= STALL_S:
                        raise _Interrupted(f"no message for {STALL_S:.0f} s during a replay") from None
                    continue
                idle = 0.0
                yield msg
                if msg.metadata.num_pending == 0:
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _ordered(self, subject_filter: str, start_seq: int, queue: asyncio.Queue[Msg]) -> Any:
        async def on_msg(msg: Msg) -> None:
            queue.put_nowait(msg)

        def config() -> api.ConsumerConfig:  # the client fills it in: a fresh one each try
            return api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq)

        return await self.watch.retrying(
            f"replay {subject_filter}",
            lambda: self.js.subscribe(
                subject_filter,
                stream=self.stream,
                cb=on_msg,
                ordered_consumer=True,
                config=config(),
                pending_msgs_limit=-1,
                pending_bytes_limit=-1,
            ),
        )

    async def experiments(self) -> list[str]:
        """Experiment ids, from the subjects of their run requests."""
        info = await self.watch.retrying(
            "list experiments",
            lambda: self.js.stream_info(self.stream, subjects_filter=f"{PREFIX}.*.run.requested"),
        )
        subjects = info.state.subjects or {}
        found = {experiment_of_subject(s) for s in subjects}
        return sorted(e for e in found if e)

    async def tail(
        self, subject_filter: str | None = None, *, from_start: bool = False
    ) -> AsyncIterator[StoredEvent | Unreadable]:
        """New events as they are appended (and, with from_start, the past ones first). Follows
        through outages: after a reconnect it resumes after the last event it gave."""
        subject_filter = subject_filter or all_events()
        if from_start:
            last = 0
        else:
            info = await self.watch.retrying("look up the stream", lambda: self.js.stream_info(self.stream))
            last = info.state.last_seq
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        while True:
            reconnects = self.watch.reconnects
            sub = await self._ordered(subject_filter, last + 1, queue)
            try:
                while self.watch.reconnects == reconnects:
                    try:
                        msg = await asyncio.wait_for(queue.get(), timeout=1.0)
                    except TimeoutError:
                        if self.watch.state == "closed" or self.watch.outage_s() > self.watch.outage_budget_s:
                            raise self.watch.unavailable("follow the log", self.watch.outage_s()) from None
                        continue
                    seq = msg.metadata.sequence.stream
                    if seq <= last:
                        continue  # delivered again by a consumer recreated in between
                    last = seq
                    try:
                        yield StoredEvent(seq, decode(msg.data))
                    except MalformedEvent as exc:
                        yield Unreadable(seq, msg.subject, str(exc))
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            while not queue.empty():  # left over from the old consumer: the new one sends them again
                queue.get_nowait()
