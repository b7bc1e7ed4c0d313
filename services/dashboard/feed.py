"""The dashboard's feed: the log replayed into the read model, then followed; pages wait on its pulse.

One ordered consumer from the first message (`EventStore.tail(from_start=True)`): the replay and the
follow are one pass, so no event falls between them. The feed is ready once it has applied the
stream's last message as of the start; pages get their snapshot only then.
"""

from __future__ import annotations

import asyncio
import time

from greenai.services.dashboard.readmodel import ReadModel
from greenai.shared.eventstore import EventStore
from greenai.shared.logging import get_logger

log = get_logger("dashboard")


class Feed:
    def __init__(self) -> None:
        self.read = ReadModel()
        self.ready = asyncio.Event()
        self.error: str | None = None
        self.replayed: int = 0
        self.replay_s: float | None = None
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

    async def follow(self, store: EventStore) -> None:
        started = time.perf_counter()
        info = await store.watch.retrying("look up the stream", lambda: store.js.stream_info(store.stream))
        target = info.state.last_seq
        if target == 0:
            self._mark_ready(started)
        try:
            async for item in store.tail(from_start=True):
                self.read.apply(item)
                if not self.ready.is_set():
                    self.replayed += 1
                    if item.seq >= target:
                        self._mark_ready(started)
                    elif self.replayed % 5000 == 0:
                        self.pulse()
                    continue
                self.pulse()
        except Exception as exc:  # the page says so; the server keeps serving what it has
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("the dashboard stopped following the log", error=self.error)
            self.ready.set()
            self.pulse()
            raise

    def _mark_ready(self, started: float) -> None:
        self.replay_s = time.perf_counter() - started
        self.ready.set()
        self.pulse()
        log.info("log replayed", events=self.replayed, seconds=round(self.replay_s, 2))
