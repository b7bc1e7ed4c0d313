"""Maps (type, version) to the pydantic class that validates its data.

Old versions stay registered so an old log still replays; a reader that wants the newest shape
upcasts explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from greenai.events.envelope import EventData

_REGISTRY: dict[tuple[str, int], type[EventData]] = {}

E = TypeVar("E", bound="type[EventData]")


def register(cls: E) -> E:
    key = (cls.TYPE, cls.VERSION)
    if key in _REGISTRY and _REGISTRY[key] is not cls:
        raise RuntimeError(f"event type {key} registered twice")
    _REGISTRY[key] = cls
    return cls


def lookup(type_: str, version: int) -> type[EventData] | None:
    return _REGISTRY.get((type_, version))


def event_types() -> dict[tuple[str, int], type[EventData]]:
    return dict(sorted(_REGISTRY.items()))
