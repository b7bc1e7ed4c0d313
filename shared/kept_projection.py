"""A fold kept alive in a process with the last stream sequence it applied, resumed from a snapshot at
start and caught up on the tail, instead of refolded from the whole log.

The fold itself stays pure (a `FoldKind`: make, apply, dump, load, no I/O); this adds the tracking
sequence, the catch-up and the snapshots (`shared.projection_snapshot`). A snapshot is taken every
`save_every` events applied and when the process stops, in the background so the reader it serves
does not wait for the upload. The log stays the only record: a missing or refused snapshot, or a
stream recreated under us, means one fold from the start — and the result is the same fold.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Generic, TypeVar

from greenai.events import Envelope
from greenai.shared.eventstore import EventStore
from greenai.shared.logging import get_logger
from greenai.shared.projection_snapshot import ProjectionSnapshots, StreamIdentity, save_at_stop

F = TypeVar("F")
SAVE_EVERY = 2000


def fold_version(version: int, *modules: ModuleType) -> str:
    """The version a snapshot must carry: the declared one and a hash of the fold's source, so a fold
    changed without a bump still refuses the snapshots of the old one (costing one full replay)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return f"{version}-{digest.hexdigest()[:16]}"


@dataclass(frozen=True)
class FoldKind(Generic[F]):
    """What the keeper needs to know of a fold; every function pure."""

    name: str
    version: str
    make: Callable[[], F]
    apply: Callable[[F, Envelope], None]
    dump: Callable[[F], bytes]
    load: Callable[[bytes], F]  # raises on anything it cannot resume from


class KeptProjection(Generic[F]):
    """One fold of the whole log, caught up on demand (`current()`), snapshotted now and then."""

    def __init__(
        self, store: EventStore, kind: FoldKind[F], snapshots: ProjectionSnapshots | None, save_every: int = SAVE_EVERY
    ) -> None:
        self.store = store
        self.kind = kind
        self.snapshots = snapshots
        self.save_every = save_every
        self.fold: F = kind.make()
        self.last_seq = 0
        self.applied = 0  # events folded by this process since it started (or since the last rebuild)
        self.resumed_from = 0  # the snapshot's sequence this process started from (0: none)
        self.saved_seq = 0
        self._stream: StreamIdentity | None = None
        self._started = False
        self._saving: asyncio.Task[int] | None = None
        self._lock = asyncio.Lock()  # two readers at once catch up once, in order
        self.log = get_logger("kept-projection").bind(projection=kind.name)

    async def current(self) -> F:
        """The fold, caught up with the log's end as of this call."""
        async with self._lock:
            stream, last = await self._stream_state()
            if self._stream is not None and (stream != self._stream or last < self.last_seq):
                self.log.warning("the stream was recreated: folding it from the start", stream=stream.name)
                self._reset()
            self._stream = stream
            if not self._started:
                self._started = True
                await self._resume(stream, last)
            async for stored in self.store.read_everything(after=self.last_seq):
                self.kind.apply(self.fold, stored.envelope)
                self.last_seq = stored.seq
                self.applied += 1
            if self.snapshots is not None and self.last_seq - self.saved_seq >= self.save_every:
                self._save_in_background()
            return self.fold

    def _reset(self) -> None:
        self.fold, self.last_seq, self.applied, self.saved_seq = self.kind.make(), 0, 0, 0

    async def _stream_state(self) -> tuple[StreamIdentity, int]:
        info = await self.store.watch.retrying(
            "look up the stream", lambda: self.store.js.stream_info(self.store.stream)
        )
        created = info.created.isoformat() if info.created is not None else ""
        return StreamIdentity(self.store.stream, created), int(info.state.last_seq)

    async def _resume(self, stream: StreamIdentity, last: int) -> None:
        if self.snapshots is None or not last:
            return
        snap = await self.snapshots.load(stream, last, self.kind.name, self.kind.version)
        if snap is None:
            return
        try:
            fold = await asyncio.to_thread(self.kind.load, snap.state)
        except Exception as exc:  # the state itself is malformed: refused like a bad header
            self.snapshots.refused(self.kind.name, f"state: {type(exc).__name__}: {str(exc)[:300]}")
            return
        self.fold, self.last_seq, self.saved_seq, self.resumed_from = fold, snap.seq, snap.seq, snap.seq
        self.log.info("resumed from a snapshot", seq=snap.seq, tail=last - snap.seq)

    def _save_in_background(self) -> None:
        if self._saving is None or self._saving.done():
            self._saving = asyncio.create_task(self.save())

    async def save(self) -> int:
        """Snapshot the fold as it is now, if it moved since the last one; returns the bytes stored."""
        if self.snapshots is None:
            return 0
        async with self._lock:
            if self._stream is None or self.last_seq <= self.saved_seq:
                return 0
            stream, seq = self._stream, self.last_seq
            state = await asyncio.to_thread(self.kind.dump, self.fold)  # the lock keeps the fold still
        try:
            stored = await self.snapshots.save(stream, self.kind.name, self.kind.version, seq, state)
        except Exception as exc:  # a snapshot is an optimisation: a failed one costs a longer catch-up
            self.log.warning("snapshot not stored", error=f"{type(exc).__name__}: {exc}", seq=seq)
            return 0
        self.saved_seq = max(self.saved_seq, seq)
        return stored

    async def close(self, timeout_s: float = 5.0) -> None:
        """At stop: the last snapshot, so the next start folds only what comes after it."""
        await save_at_stop(self._saving, self.save, timeout_s)
