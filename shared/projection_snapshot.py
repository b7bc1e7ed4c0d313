"""Snapshots of kept projections in a NATS object store, so a process resumes a fold without replaying
the whole log — and never trusts what it reads back.

The log stays the only record: a snapshot is a cache of a fold up to a stream sequence. It lives in the
`greenai-projections` object-store bucket (created by the admin setup, `shared.bus.ensure_log`), so every
process on every machine reaches it without a shared filesystem; only the coordinator role may write it
(`shared.auth.permissions`). One object per (stream, projection), replaced whole: the object store
writes the new chunks, then switches the name to them in one message.

What is read back is untrusted input. A snapshot is used only when it is small enough (stored and
inflated sizes bounded before anything is kept), arrives in time, inflates cleanly, has a well-formed
header, and names this projection, this fold version, this stream (by name and creation time, so a
recreated stream's snapshot is refused) and a sequence the stream has reached. Anything else is
refused with one warning and the caller folds the log from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, NotFoundError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from greenai.shared.logging import get_logger

BUCKET = "greenai-projections"
DASHBOARD_BUCKET = "greenai-dashboard"  # the dashboard's read models alone: its role may replace them (auth.py)
FORMAT = "greenai-projection-snapshot/1"
MAX_STORED_BYTES = 64 * 2**20  # compressed, as read from the bucket
MAX_STATE_BYTES = 1024 * 2**20  # inflated
READ_TIMEOUT_S = 60.0


async def save_at_stop(pending: asyncio.Task[Any] | None, save: Callable[[], Awaitable[Any]], timeout_s: float) -> None:
    """The last snapshot of a projection at stop, after any save in flight. Bounded: a stop never waits
    long for a server that went away (the next start only folds a longer tail)."""

    async def last() -> None:
        if pending is not None:
            await pending
        await save()

    with contextlib.suppress(Exception):
        await asyncio.wait_for(last(), timeout_s)


async def ensure_projection_bucket(js: JetStreamContext, replicas: int = 1, bucket: str = BUCKET) -> None:
    """Create the snapshot bucket (admin); an existing one is kept. Bounded: a replaced snapshot's
    chunks are purged, so it holds about one snapshot per projection."""
    try:
        await js.object_store(bucket)
    except BucketNotFoundError:
        config = api.ObjectStoreConfig(bucket=bucket, replicas=replicas, max_bytes=16 * MAX_STORED_BYTES)
        await js.create_object_store(bucket, config=config)


@dataclass(frozen=True)
class StreamIdentity:
    """Which stream a sequence number belongs to: a recreated stream starts its sequences over."""

    name: str
    created: str


class Header(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = Field(max_length=100)
    projection: str = Field(max_length=200)
    fold_version: str = Field(max_length=200)
    stream: str = Field(max_length=300)
    stream_created: str = Field(max_length=100)
    seq: int = Field(ge=1)


@dataclass(frozen=True)
class Snapshot:
    seq: int
    state: bytes


class SnapshotRefused(Exception):
    """A snapshot this process will not resume from; the message says why."""


class _Bounded(io.BufferedIOBase):
    """Where the object store writes what it reads: refuses to grow past the limit."""

    def __init__(self, limit: int) -> None:
        self.data = bytearray()
        self.limit = limit

    def write(self, b: Any) -> int:
        if len(self.data) + len(b) > self.limit:
            raise SnapshotRefused(f"more than {self.limit:,} bytes stored")
        self.data += b
        return len(b)


def encode_snapshot(header: Header, state: bytes) -> bytes:
    return zlib.compress(header.model_dump_json().encode() + b"\n" + state, 1)


def decode_snapshot(raw: bytes, max_state_bytes: int) -> tuple[Header, bytes]:
    """Inflate at most `max_state_bytes` (a small object may inflate to gigabytes) and split the header off."""
    inflate = zlib.decompressobj()
    try:
        body = inflate.decompress(raw, max_state_bytes + 1)
    except zlib.error as exc:
        raise SnapshotRefused(f"does not inflate: {exc}") from exc
    if len(body) > max_state_bytes or inflate.unconsumed_tail:
        raise SnapshotRefused(f"inflates past {max_state_bytes:,} bytes")
    if not inflate.eof:
        raise SnapshotRefused("truncated")
    head, sep, state = body.partition(b"\n")
    if not sep:
        raise SnapshotRefused("no header line")
    try:
        return Header.model_validate_json(head, strict=True), state
    except ValidationError as exc:
        raise SnapshotRefused(f"malformed header: {exc.errors()[0]['msg']}") from exc


class ProjectionSnapshots:
    """The snapshots of one stream's projections. Where the bucket does not exist, snapshots are off
    (a warning says so once): every start folds the whole log, as without this."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        bucket: str = BUCKET,
        max_stored_bytes: int = MAX_STORED_BYTES,
        max_state_bytes: int = MAX_STATE_BYTES,
        timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.js = js
        self.bucket = bucket
        self.max_stored_bytes = max_stored_bytes
        self.max_state_bytes = max_state_bytes
        self.timeout_s = timeout_s
        self._obs: Any = None
        self.off = False
        self.log = get_logger("projection-snapshot")

    async def _store(self) -> Any:
        if self._obs is None and not self.off:
            try:
                self._obs = await self.js.object_store(self.bucket)
            except BucketNotFoundError:
                self.off = True
                self.log.warning("no snapshot bucket: projections are rebuilt from the log at every start",
                                 bucket=self.bucket)  # fmt: skip
        return self._obs

    @staticmethod
    def object_name(stream: StreamIdentity, projection: str) -> str:
        return f"{stream.name}.{projection}"

    async def save(self, stream: StreamIdentity, projection: str, fold_version: str, seq: int, state: bytes) -> int:
        """Store the fold's state at `seq`; returns the bytes stored (0 where snapshots are off)."""
        obs = await self._store()
        if obs is None:
            return 0
        header = Header(format=FORMAT, projection=projection, fold_version=fold_version, stream=stream.name,
                        stream_created=stream.created, seq=seq)  # fmt: skip
        raw = await asyncio.to_thread(encode_snapshot, header, state)
        if len(raw) > self.max_stored_bytes:
            self.log.warning("snapshot not stored: too large", projection=projection, bytes=len(raw))
            return 0
        await obs.put(self.object_name(stream, projection), raw)
        return len(raw)

    async def load(self, stream: StreamIdentity, last_seq: int, projection: str, fold_version: str) -> Snapshot | None:
        """The stored state to resume from, or None (none stored, or refused: logged once, here)."""
        obs = await self._store()
        if obs is None:
            return None
        name = self.object_name(stream, projection)
        try:
            return await self._read(obs, name, stream, last_seq, projection, fold_version)
        except NotFoundError:
            self.log.info("no snapshot yet: folding the log from the start", projection=projection)
            return None
        except SnapshotRefused as exc:
            self.refused(projection, str(exc))
            return None

    def refused(self, projection: str, reason: str) -> None:
        self.log.warning("snapshot refused: folding the log from the start", projection=projection, reason=reason)

    async def _read(
        self, obs: Any, name: str, stream: StreamIdentity, last_seq: int, projection: str, fold_version: str
    ) -> Snapshot:
        info = await obs.get_info(name)
        if info.size is None or info.size > self.max_stored_bytes:
            raise SnapshotRefused(f"stored size {info.size} over {self.max_stored_bytes:,} bytes")
        sink = _Bounded(self.max_stored_bytes)
        try:
            await asyncio.wait_for(obs.get(name, writeinto=sink), self.timeout_s)
        except TimeoutError as exc:
            raise SnapshotRefused(f"not read within {self.timeout_s:.0f} s") from exc
        except SnapshotRefused:
            raise
        except NotFoundError:
            raise
        except Exception as exc:  # a digest mismatch, bad metadata: a damaged object
            raise SnapshotRefused(f"unreadable: {type(exc).__name__}: {exc}") from exc
        header, state = await asyncio.to_thread(decode_snapshot, bytes(sink.data), self.max_state_bytes)
        expected = {"format": FORMAT, "projection": projection, "fold_version": fold_version,
                    "stream": stream.name, "stream_created": stream.created}  # fmt: skip
        for key, value in expected.items():
            if getattr(header, key) != value:
                raise SnapshotRefused(f"{key} is {getattr(header, key)!r}, expected {value!r}")
        if header.seq > last_seq:
            raise SnapshotRefused(f"at sequence {header.seq}, past the stream's last ({last_seq})")
        return Snapshot(header.seq, state)
