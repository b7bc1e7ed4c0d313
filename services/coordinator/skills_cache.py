"""The skill memory kept up to date in the coordinator process instead of refolded at every decision.

The fold (`projections.skills.SkillFold`) stays pure; this keeps one alive with the last stream
sequence it applied and, when asked, applies only what was appended since. A decision then costs
the events since the previous one, not the whole log. Nothing is stored: the log stays the only
record, and a new process catches up once from the start.
"""

from __future__ import annotations

import asyncio

from greenai.projections.skills import SkillFold, SkillMemory
from greenai.shared.eventstore import EventStore


class SkillsCache:
    """One coordinator's skill memory; `memory()` catches up from `last_seq` and returns it."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.fold = SkillFold()
        self.last_seq = 0
        self.applied = 0  # events folded since the start (or the last rebuild)
        self._lock = asyncio.Lock()  # two decisions at once catch up once, in order

    async def memory(self) -> SkillMemory:
        async with self._lock:
            if self.last_seq and await self._log_behind_us():
                self.fold, self.last_seq, self.applied = SkillFold(), 0, 0
            async for stored in self.store.read_everything(after=self.last_seq):
                self.fold.apply(stored.envelope)
                self.last_seq = stored.seq
                self.applied += 1
            return self.fold.memory()

    async def _log_behind_us(self) -> bool:
        """A stream that ends before what we applied was recreated (sequences start over): refold."""
        info = await self.store.watch.retrying(
            "look up the stream", lambda: self.store.js.stream_info(self.store.stream)
        )
        return bool(info.state.last_seq < self.last_seq)
