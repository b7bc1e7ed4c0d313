"""The read side of the event log: one experiment's history, the whole log, the experiment list, and
following new events, each riding out reconnects and stalls (see `EventReader._read_all`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from greenai.events import MalformedEvent, decode
from greenai.events.subjects import PREFIX, all_events, experiment_filter, experiment_of_subject
from greenai.shared.connection import TRANSIENT, ConnectionWatch
from greenai.shared.eventstore_records import History, StoredEvent, Unreadable

STALL_S = 10.0  # a replay that receives nothing this long (while connected) is restarted where it was


class _Interrupted(Exception):
    """A replay cut short by a reconnect or a stall: start again after the last message."""


REPLAY_RETRYABLE: tuple[type[BaseException], ...] = (*TRANSIENT, _Interrupted)


class EventReader:
    """Reading the log; mixed into `EventStore`, which sets the attributes below."""

    nc: NATS
    js: JetStreamContext
    stream: str
    watch: ConnectionWatch

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

    async def read_everything(self, subject_filter: str | None = None, *, after: int = 0) -> AsyncIterator[StoredEvent]:
        """All valid events under a filter (default: the whole log), for cross-experiment folds;
        with `after`, only those past that stream sequence (a fold catching up)."""
        async for msg in self._read_all(subject_filter or all_events(), after):
            try:
                yield StoredEvent(msg.metadata.sequence.stream, decode(msg.data))
            except MalformedEvent:
                continue

    async def _read_all(self, subject_filter: str, after: int = 0) -> AsyncIterator[Msg]:
        """Every message under the filter, from the first, through an ordered consumer (the
        client's fastest path: server push with flow control, gaps detected and repaired).

        No overall timeout: a replay ends when the server says nothing is pending. A replay cut
        by a disconnect, or one that stalls (nothing for STALL_S while connected), starts again
        after the last message it yielded; the outage budget counts only time without progress."""
        last = after
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
            try:
                info = await sub.consumer_info()
            except NotFoundError:
                # in a cluster a just-created ephemeral consumer can be unknown to the node asked (seen right
                # after a frozen node resumed): start this replay again, within the outage budget
                raise _Interrupted("the replay's consumer was not found yet") from None
            if not info.num_pending and not (info.delivered and info.delivered.consumer_seq):
                return  # nothing (more) under this filter
            idle, taken = 0.0, 0
            while True:
                try:  # what is already here, without a task and a timer per message
                    msg = queue.get_nowait()
                except asyncio.QueueEmpty:
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
                taken += 1
                if taken % 8 == 0:
                    # let the socket reader run (it reads ~40 messages a turn): the server cuts off a
                    # client that reads slower than it sends (a slow consumer, seen at every 128)
                    await asyncio.sleep(0)
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
        self, subject_filter: str | None = None, *, from_start: bool = False, after: int | None = None
    ) -> AsyncIterator[StoredEvent | Unreadable]:
        """New events as they are appended (and, with from_start, the past ones first; with `after`,
        those past that sequence: a kept fold resuming). Follows through outages: after a reconnect it
        resumes after the last event it gave."""
        subject_filter = subject_filter or all_events()
        if after is not None:
            last = after
        elif from_start:
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
