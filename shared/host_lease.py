"""One machine to itself while latency is measured: a per-host lease in a NATS key-value bucket.

Two kinds of holders, per host:
- `<host>.busy.<id>`: a heavy job (quantizing, pruning, training, evaluating accuracy) is running;
- `<host>.latency`: a latency measurement runs, or waits for the busy jobs to end.

A heavy job writes its busy key, then looks for a latency key; if there is one it withdraws and waits.
A measurement creates the latency key (one at a time per host), then waits until no busy key is left.
Each side writes before it reads, so the two can never both go ahead (the bucket is one stream, its
writes ordered). Keys are refreshed while held and expire with the bucket's `max_age` when their holder
dies, so a crash frees the host within one TTL. Where the bucket does not exist the gate is off (a
warning says so once): agents still work, measurements are only less trustworthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError

from greenai.shared.logging import get_logger

BUCKET = "greenai-hosts"
TTL_S = 60.0
POLL_S = 0.5


def host_token(name: str | None = None) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name or socket.gethostname())[:100] or "host"


async def ensure_hosts_bucket(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the lease bucket (admin); an existing one is kept."""
    try:
        await js.key_value(BUCKET)
    except BucketNotFoundError:
        await js.create_key_value(config=api.KeyValueConfig(bucket=BUCKET, history=1, ttl=TTL_S, replicas=replicas))


class HostGate:
    """The lease of one host, used by every agent process on it."""

    def __init__(self, js: JetStreamContext, host: str | None = None, ttl_s: float = TTL_S) -> None:
        self.js = js
        self.host = host_token(host)
        self.ttl_s = ttl_s
        self._kv: Any = None
        self._off = False
        self.log = get_logger("host-lease").bind(host=self.host)

    async def _bucket(self) -> Any:
        if self._kv is None and not self._off:
            try:
                self._kv = await self.js.key_value(BUCKET)
            except BucketNotFoundError:
                self._off = True
                self.log.warning("no host-lease bucket: latency is measured without the host to itself")
        return self._kv

    async def _exists(self, kv: Any, key: str) -> bool:
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return False
        return entry is not None and entry.value is not None and entry.operation is None

    async def _busy(self, kv: Any) -> list[str]:
        """The live busy keys of this host. Read from the stream's subject counts, then each key's last
        entry: nats-py's `keys()` can end its listing before an entry in flight arrives (it marks the
        listing done from consumer info), which here would let a measurement start beside a job."""
        prefix = f"$KV.{BUCKET}."
        info = await self.js.stream_info(f"KV_{BUCKET}", subjects_filter=f"{prefix}{self.host}.busy.>")
        keys = [s.removeprefix(prefix) for s in (info.state.subjects or {})]
        return [k for k in keys if await self._exists(kv, k)]

    @contextlib.asynccontextmanager
    async def heavy(self, owner: str) -> AsyncIterator[None]:
        """Hold the host as one of its heavy jobs; waits while a latency measurement holds it."""
        kv = await self._bucket()
        if kv is None:
            yield
            return
        key = f"{self.host}.busy.{uuid.uuid4().hex[:12]}"
        waited = False
        while True:
            await kv.put(key, owner.encode())
            if not await self._exists(kv, f"{self.host}.latency"):
                break
            await kv.delete(key)
            if not waited:
                self.log.info("waiting: a latency measurement holds the host", owner=owner)
                waited = True
            await asyncio.sleep(POLL_S)
        async with self._refreshing(kv, key, owner):
            yield

    @contextlib.asynccontextmanager
    async def exclusive(self, owner: str) -> AsyncIterator[int]:
        """The host to itself; yields how many heavy jobs it waited for."""
        kv = await self._bucket()
        if kv is None:
            yield 0
            return
        key = f"{self.host}.latency"
        while True:
            try:
                await kv.create(key, owner.encode())
                break
            except KeyWrongLastSequenceError:  # another measurement holds it
                await asyncio.sleep(POLL_S)
        async with self._refreshing(kv, key, owner):
            waited_for = set(await self._busy(kv))
            while busy := await self._busy(kv):
                waited_for |= set(busy)
                await asyncio.sleep(POLL_S)
            yield len(waited_for)

    @contextlib.asynccontextmanager
    async def _refreshing(self, kv: Any, key: str, owner: str) -> AsyncIterator[None]:
        async def refresh() -> None:
            while True:
                await asyncio.sleep(self.ttl_s / 3)
                with contextlib.suppress(Exception):
                    await kv.put(key, owner.encode())

        task = asyncio.create_task(refresh())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(Exception):
                await kv.delete(key)


# The gate of the job being handled (set by the agent runtime), so shared.jobs.run_in_child honours it.
HOST_GATE: ContextVar[tuple[HostGate, str] | None] = ContextVar("HOST_GATE", default=None)


@contextlib.asynccontextmanager
async def host_to_itself() -> AsyncIterator[tuple[bool, int]]:
    """The running job's host to itself: (whether a lease was held, heavy jobs it waited for)."""
    current = HOST_GATE.get()
    if current is None:
        yield False, 0
        return
    gate, owner = current
    async with gate.exclusive(owner) as waited:
        yield not gate._off, waited


@contextlib.asynccontextmanager
async def heavy_work() -> AsyncIterator[None]:
    """Counts as heavy work on the running job's host (waits while a latency measurement holds it)."""
    current = HOST_GATE.get()
    if current is None:
        yield
        return
    gate, owner = current
    async with gate.heavy(owner):
        yield
