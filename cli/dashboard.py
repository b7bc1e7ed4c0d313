"""`greenai dashboard`: the live pages in the browser, fed by the event log (read-only, as `viewer`)."""

from __future__ import annotations

from typing import Annotated

import typer

from greenai.cli.log_access import existing_bus
from greenai.cli.options import DataDir, NatsUrl, WorkDir, console, settings_or_exit
from greenai.shared.auth import credentials_for
from greenai.shared.bus import open_store
from greenai.shared.eventstore import EventStore
from greenai.shared.logging import configure_logging


def dashboard(
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Serve the live dashboard: experiments, each experiment's front and timeline, and the agents."""
    import uvicorn

    from greenai.services.dashboard.feed import Feed
    from greenai.services.dashboard.server import create_app

    settings = settings_or_exit(data_dir, work_dir, nats_url)
    configure_logging("console", "warning")
    bus = existing_bus(settings, allow_start=True)

    async def open_log() -> EventStore:  # GREENAI_CREDENTIALS if set, else viewer.nk in the auth dir
        return await open_store(settings, bus.url, "dashboard", "viewer")

    async def open_cli() -> EventStore:  # actions: the cli role's own seed from the auth dir
        cli = settings.model_copy(update={"credentials": None})
        return await open_store(cli, bus.url, "dashboard-cli", "cli")

    can_act = credentials_for(settings.auth_path, "cli") is not None
    app = create_app(Feed(), open_log, open_cli if can_act else None, settings)
    shown = f"[{host}]" if ":" in host else host
    mode = "runs and reviews as `cli`" if can_act else "read-only: no cli credentials in " + str(settings.auth_path)
    console.print(f"dashboard: http://{shown}:{port}/  (log: NATS {bus.url}; {mode}; Ctrl-C to stop)")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    finally:
        bus.close()
