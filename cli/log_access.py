"""Opening the log for a command that reads it: the server (started when none is configured) and one
experiment's history handed to the command's body."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import typer

from greenai.cli.options import console
from greenai.shared.bus import Bus, ensure_log, ensure_nats, open_store
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore, History


def existing_bus(settings: Settings, allow_start: bool = False) -> Bus:
    """The configured server, or (`allow_start`) an embedded one with its stream; a clean exit when none."""
    try:
        bus = ensure_nats(settings, start=allow_start)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if bus.embedded is not None:  # a new, empty log: create the stream (as admin) before reading it
        asyncio.run(ensure_log(settings, bus.url))
    return bus


def on_history(
    settings: Settings, experiment: str, who: str, body: Callable[[History, EventStore], Awaitable[int]]
) -> None:
    """Read one experiment from the log and hand it, with the open store, to `body`; exit with its code."""
    bus = existing_bus(settings, allow_start=True)

    async def go() -> int:
        store = await open_store(settings, bus.url, who, "viewer")
        try:
            history = await store.read(experiment)
            if not history.events:
                console.print(f"[red]no events for experiment {experiment!r}[/red]")
                return 1
            return await body(history, store)
        finally:
            await store.close()

    try:
        code = asyncio.run(go())
    finally:
        bus.close()
    raise typer.Exit(code)
