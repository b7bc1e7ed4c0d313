"""`greenai agent` and `greenai up`: agents in the foreground, one in this process or all as children."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer

from greenai.cli.agents import AGENTS, run_agent, spawn_agent, stop_all
from greenai.cli.options import DataDir, NatsUrl, WorkDir, console, settings_or_exit
from greenai.shared.bus import ensure_log, ensure_nats
from greenai.shared.eventstore import NatsUnavailable
from greenai.shared.logging import get_logger


def agent(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(AGENTS)}")],
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Run one agent in this process (JSON logs on stderr)."""
    if name not in AGENTS:
        console.print(f"[red]unknown agent {name!r}; known: {', '.join(AGENTS)}[/red]")
        raise typer.Exit(2)
    try:
        run_agent(name, settings_or_exit(data_dir, work_dir, nats_url))
    except NatsUnavailable as exc:  # one line, no traceback; the job in hand goes to another instance
        get_logger(name).error("exiting: NATS unavailable", error=str(exc))
        raise typer.Exit(3) from None


def up(data_dir: DataDir = None, work_dir: WorkDir = None, nats_url: NatsUrl = None) -> None:
    """Start every agent (and an embedded NATS server if none is configured) until Ctrl-C."""
    settings = settings_or_exit(data_dir, work_dir, nats_url)
    bus = ensure_nats(settings)
    if bus.embedded is not None or (settings.auth_path / "admin.nk").is_file():
        asyncio.run(ensure_log(settings, bus.url))
    procs = [spawn_agent(a, settings, bus.url, None) for a in AGENTS]
    console.print(f"NATS {bus.url}; agents: {', '.join(AGENTS)} (Ctrl-C stops them)")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1.0)
        console.print("[red]an agent exited; stopping the others[/red]")
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(procs)
        bus.close()
