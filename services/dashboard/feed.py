"""The dashboard's feed: the read model resumed from its snapshot (or the log replayed), then followed;
pages wait on its pulse.

One ordered consumer from the read position (`EventStore.tail(after=...)`): the catch-up and the follow
are one pass, so no event falls between them. The feed is ready once it has applied the stream's last
message as of the start; pages get their snapshot only then.

The read model is kept with its position (the last stream sequence applied) and snapshotted to the
`greenai-dashboard` bucket (`shared.projection_snapshot`) once replayed, every `save_every` events (at
most every `MIN_SAVE_INTERVAL_S`) and at stop. A restart resumes from it: experiments come back dormant
(`readmodel_state.py`) and are folded from their own history when first needed. A snapshot that is
missing, refused (corrupt, another stream, another fold version, past the log) or unreadable for this
role means one replay from the start, said in one log line; a role that may not write it keeps serving
and replays at its next start.
"""

from __future__ import annotations

import asyncio
import time

from greenai.services.dashboard import readmodel_state
from greenai.services.dashboard.readmodel import ReadModel
from greenai.shared.eventstore import EventStore
from greenai.shared.eventstore_records import StoredEvent, Unreadable
from greenai.shared.logging import get_logger
from greenai.shared.projection_snapshot import DASHBOARD_BUCKET, ProjectionSnapshots, StreamIdentity, save_at_stop

log = get_logger("dashboard")
SAVE_EVERY = 5000
MIN_SAVE_INTERVAL_S = 30.0
SNAPSHOT_IO_S = 20.0  # a role without rights on the bucket sees a timeout: replay rather than wait longer


class Feed:
    def __init__(
        self, snapshots: bool = True, save_every: int = SAVE_EVERY, snapshot_io_s: float = SNAPSHOT_IO_S
    ) -> None:
        self.read = ReadModel()
        self.ready = asyncio.Event()
        self.error: str | None = None
        self.replayed: int = 0  # events folded from the log before ready (the tail, after a snapshot)
        self.replay_s: float | None = None
        self.resumed_from = 0  # the snapshot's sequence this feed started from (0: none, a full replay)
        self.first_read = 0  # the first sequence this feed read from the log
        self.use_snapshots = snapshots
        self.save_every = save_every
        self.snapshot_io_s = snapshot_io_s
        self.saved_seq = 0
        self.store: EventStore | None = None
        self._snapshots: ProjectionSnapshots | None = None
        self._stream: StreamIdentity | None = None
        self._saving: asyncio.Task[None] | None = None
        self._saved_at = 0.0
        self._lock = asyncio.Lock()  # waking an experiment and folding into it never interleave
        self._pulse = asyncio.Event()

    def pulse(self) -> None:
        """Wake every page waiting for a change."""
        self._pulse.set()
        self._pulse = asyncio.Event()

    async def changed(self, after: int, timeout: float) -> bool:
        """True once the read model holds a message after sequence `after`; False after `timeout`."""
        if self.read.last_seq > after:
            return True
        pulse = self._pulse
        try:
            await asyncio.wait_for(pulse.wait(), timeout)
        except TimeoutError:
            return self.read.last_seq > after
        return True

    async def wake(self, *experiment_ids: str) -> None:
        """Fold these experiments from their history if they are dormant (resumed from a snapshot)."""
        for exp in experiment_ids:
            if exp not in self.read.dormant:
                continue
            async with self._lock:
                if exp in self.read.dormant and self.store is not None:
                    self.read.wake(await self.store.read(exp))

    async def follow(self, store: EventStore) -> None:
        started = time.perf_counter()
        self.store = store
        info = await store.watch.retrying("look up the stream", lambda: store.js.stream_info(store.stream))
        target = info.state.last_seq
        self._stream = StreamIdentity(store.stream, info.created.isoformat() if info.created else "")
        if self.use_snapshots and target:
            await self._resume(store, target, int(info.state.first_seq or 1))
        if self.read.last_seq >= target:
            self._mark_ready(started)
        try:
            async for item in store.tail(after=self.read.last_seq):
                self.first_read = self.first_read or item.seq
                await self._apply(item)
                if not self.ready.is_set():
                    self.replayed += 1
                    if item.seq >= target:
                        self._mark_ready(started)
                    elif self.replayed % 5000 == 0:
                        self.pulse()
                    continue
                self.pulse()
                self._maybe_save()
        except Exception as exc:  # the page says so; the server keeps serving what it has
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("the dashboard stopped following the log", error=self.error)
            self.ready.set()
            self.pulse()
            raise

    async def _apply(self, item: StoredEvent | Unreadable) -> None:
        if isinstance(item, StoredEvent) and item.envelope.experiment_id in self.read.dormant:
            await self.wake(item.envelope.experiment_id)
        self.read.apply(item)

    async def _resume(self, store: EventStore, target: int, first_seq: int) -> None:
        assert self._stream is not None
        self._snapshots = ProjectionSnapshots(store.js, bucket=DASHBOARD_BUCKET)
        name, version = readmodel_state.NAME, readmodel_state.VERSION
        try:
            snap = await asyncio.wait_for(self._snapshots.load(self._stream, target, name, version), self.snapshot_io_s)
        except Exception as exc:  # no rights on the bucket (a timeout), the server went away: the log is the record
            self.use_snapshots = False  # nor written, then: one line says so, not one per try
            reason = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("dashboard snapshot unreachable: replaying the log, and restarts will too", reason=reason)
            return
        if snap is None:
            return
        try:
            read = await asyncio.to_thread(readmodel_state.load_state, snap.state)
        except Exception as exc:
            self._snapshots.refused(name, f"state: {type(exc).__name__}: {str(exc)[:300]}")
            return
        if read.last_seq != snap.seq:
            self._snapshots.refused(name, f"state at {read.last_seq}, header at {snap.seq}")
            return
        if first_seq > snap.seq + 1:  # messages after it aged out of the stream: its tail is gone
            self._snapshots.refused(name, f"at sequence {snap.seq}, but the log now starts at {first_seq}")
            return
        self.read, self.resumed_from, self.saved_seq = read, snap.seq, snap.seq
        log.info("read models resumed from a snapshot", seq=snap.seq, tail=target - snap.seq)

    def _mark_ready(self, started: float) -> None:
        self.replay_s = time.perf_counter() - started
        self.ready.set()
        self.pulse()
        log.info("log replayed", events=self.replayed, resumed_from=self.resumed_from,
                 seconds=round(self.replay_s, 2))  # fmt: skip
        if self.replayed >= self.save_every:
            self._save_in_background()

    def _maybe_save(self) -> None:
        due = self.read.last_seq - self.saved_seq >= self.save_every
        if due and time.monotonic() - self._saved_at >= MIN_SAVE_INTERVAL_S:
            self._save_in_background()

    def _save_in_background(self) -> None:
        if self._saving is None or self._saving.done():
            self._saving = asyncio.create_task(self.save())

    async def save(self) -> None:
        """Snapshot the read model as it is now, if it moved since the last one. The state is taken
        without awaiting (the feed cannot move meanwhile); compressing and storing run apart. A role
        that may not write it is told once, then no more is tried."""
        if self.store is None or self._stream is None or not self.use_snapshots:
            return
        if self.read.last_seq <= self.saved_seq or not self.read.last_seq:
            return
        if self._snapshots is None:
            self._snapshots = ProjectionSnapshots(self.store.js, bucket=DASHBOARD_BUCKET)
        seq, state = self.read.last_seq, readmodel_state.dump_state(self.read)
        self._saved_at = time.monotonic()
        try:
            saving = self._snapshots.save(self._stream, readmodel_state.NAME, readmodel_state.VERSION, seq, state)
            stored = await asyncio.wait_for(saving, self.snapshot_io_s)
        except Exception as exc:  # no write rights (a timeout), a full bucket: restarts replay, serving goes on
            self.use_snapshots = False
            log.warning("dashboard snapshot not stored: restarts replay the log",
                        reason=f"{type(exc).__name__}: {exc}"[:300])  # fmt: skip
            return
        if stored:
            self.saved_seq = max(self.saved_seq, seq)
            log.info("dashboard snapshot stored", seq=seq, bytes=stored)

    async def close(self, timeout_s: float = 5.0) -> None:
        """At stop: the last snapshot, bounded (a server gone away only costs a longer tail next time)."""
        await save_at_stop(self._saving, self.save, timeout_s)
