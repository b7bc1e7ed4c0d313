"""`greenai export` and `greenai import`: an experiment's events out to a file and into another log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from greenai.cli.log_access import existing_bus, on_history
from greenai.cli.options import NatsUrl, WorkDir, console, settings_or_exit
from greenai.events import MalformedEvent, decode
from greenai.shared.bus import open_store
from greenai.shared.eventstore import EventStore, History


def export(
    experiment: str,
    out: Annotated[Path, typer.Option(help="JSON Lines file: one event envelope a line, in log order.")],
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Write an experiment's events to a file: to keep, share, or `greenai import` into another log."""

    async def write(history: History, _: EventStore) -> int:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(e.model_dump_json() + "\n" for e in history.envelopes), encoding="utf-8")
        console.print(f"{len(history.envelopes)} events of {experiment} written to {out}")
        return 0

    on_history(settings_or_exit(None, work_dir, nats_url), experiment, "export", write)


def import_events(
    file: Annotated[Path, typer.Argument(help="A file written by `greenai export`.")],
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Append exported events to this log. Event ids are kept, so importing twice adds nothing."""
    settings = settings_or_exit(None, work_dir, nats_url)
    try:
        envelopes = [decode(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, MalformedEvent) as exc:
        console.print(f"[red]cannot import {file}:[/red] {exc}")
        raise typer.Exit(2) from exc
    bus = existing_bus(settings, allow_start=True)

    async def go() -> int:
        store = await open_store(settings, bus.url, "import", "admin")
        try:
            present: set[str] = set()
            for exp in {e.experiment_id for e in envelopes}:
                present |= {str(e.event_id) for e in (await store.read(exp)).envelopes}
            new = 0
            for env in envelopes:
                if str(env.event_id) not in present:
                    new += 0 if (await store.append(env)).duplicate else 1
        finally:
            await store.close()
        console.print(f"{new} event(s) appended, {len(envelopes) - new} already in the log")
        return 0

    try:
        code = asyncio.run(go())
    finally:
        bus.close()
    raise typer.Exit(code)
