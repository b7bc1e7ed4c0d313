"""Maps (type, version) to the pydantic class that validates its data.

Old versions stay registered so an old log still replays; a reader that wants the newest shape
upcasts explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from greenai.events.envelope import EventData

_REGISTRY: dict[tuple[str, int], type[EventData]] = {}
# Resolvers for open families of types (`<kind>.requested` for any step kind): a new kind of agent
# needs no new class here. Consulted only when no class is registered for the exact type.
_FAMILIES: list[Callable[[str, int], type[EventData] | None]] = []

E = TypeVar("E", bound="type[EventData]")


def register(cls: E) -> E:
    key = (cls.TYPE, cls.VERSION)
    if key in _REGISTRY and _REGISTRY[key] is not cls:
        raise RuntimeError(f"event type {key} registered twice")
    _REGISTRY[key] = cls
    return cls


def register_family(resolver: Callable[[str, int], type[EventData] | None]) -> None:
    _FAMILIES.append(resolver)


def lookup(type_: str, version: int) -> type[EventData] | None:
    found = _REGISTRY.get((type_, version))
    if found is not None:
        return found
    for resolver in _FAMILIES:
        found = resolver(type_, version)
        if found is not None:
            return found
    return None


def event_types() -> dict[tuple[str, int], type[EventData]]:
    return dict(sorted(_REGISTRY.items()))
