"""What the event log hands back (stored events, histories, append results) and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass, field

from greenai.events import Envelope


class ConcurrencyError(RuntimeError):
    """Someone appended to the experiment after we read it; re-read and decide again."""


class PermissionDenied(PermissionError):
    """The server refused a publish: this identity may not produce that event (or use that API)."""


class EventTooLarge(ValueError):
    """An event over the size limit: refused before it is sent, so the log never holds it."""


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
