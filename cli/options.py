"""What every `greenai` command shares: the console, the common options, and settings or a clean exit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from greenai.shared.config import ConfigError, Settings, load_settings

console = Console()

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Benchmark files (GREENAI_DATA_DIR).")]
WorkDir = Annotated[
    Path | None, typer.Option("--work-dir", help="Artifacts, experiments, NATS store (GREENAI_WORK_DIR).")
]
NatsUrl = Annotated[str | None, typer.Option("--nats-url", help="NATS server (GREENAI_NATS_URL); unset: embedded.")]


def settings_or_exit(
    data_dir: Path | None = None, work_dir: Path | None = None, nats_url: str | None = None, **more: object
) -> Settings:
    """Settings from flags and GREENAI_*; a bad value is one red line and exit code 2, no traceback."""
    try:
        return load_settings(data_dir=data_dir, work_dir=work_dir, nats_url=nats_url, **more)
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]bad configuration:[/red] {exc}")
        raise typer.Exit(2) from exc
