"""`greenai auth`: the NATS identities of the roles, and the server's side of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from greenai.shared.auth import PRODUCES, AuthError, add_role, durables_of, init_auth, step_agent_types
from greenai.shared.config import ConfigError, load_settings

auth_app = typer.Typer(help="NATS identities: one nkey per role, with the subjects it may use.", no_args_is_help=True)
console = Console()

Dir = Annotated[Path | None, typer.Option("--dir", help="Where the seeds go (default: <work_dir>/auth).")]


def _folder(folder: Path | None) -> tuple[Path, str, str]:
    try:
        settings = load_settings()
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]bad configuration:[/red] {exc}")
        raise typer.Exit(2) from exc
    return folder or settings.auth_path, settings.stream, settings.artifact_bucket


@auth_app.command("init")
def init(
    folder: Dir = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="New keys for every role (old seeds stop working).")] = False,
) -> None:
    """Write one seed per role (mode 0600) and the server's authorization block; keeps existing keys."""
    target, stream, bucket = _folder(folder)
    files = init_auth(target, rotate=rotate, stream=stream, bucket=bucket)
    table = Table("role", "seed file", "may append", "durable consumer")
    for role in PRODUCES:
        table.add_row(
            role, str(files.seed(role)), ", ".join(PRODUCES[role]) or "-", ", ".join(durables_of(role)) or "-"
        )
    table.add_row("admin", str(files.seed("admin")), "everything (stream and bucket management)", "-")
    console.print(table)
    console.print(
        f"server: add [bold]include {files.server_conf}[/bold] to nats-server's config (the embedded server does);\n"
        "agents: GREENAI_CREDENTIALS=<the role's seed file>, one role per process"
    )


@auth_app.command("add-role")
def add(
    role: Annotated[str, typer.Argument(help="The new agent kind's role name.")],
    publishes: Annotated[str, typer.Option("--publishes", help="Comma-separated event types it produces.")] = "",
    kind: Annotated[
        str | None, typer.Option("--kind", help="A step agent of this kind: <kind>.completed and the job events.")
    ] = None,
    folder: Dir = None,
) -> None:
    """An identity for a new kind of agent, allowed to append only the event types given."""
    target, stream, bucket = _folder(folder)
    types = tuple(t.strip() for t in publishes.split(",") if t.strip())
    if kind is not None:
        types = (*step_agent_types(kind), *types)
    if not types:
        console.print("[red]give --kind, --publishes or both[/red]")
        raise typer.Exit(2)
    try:
        files = add_role(target, role, types, stream=stream, bucket=bucket)
    except AuthError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"{role}: {files.seed(role)}; restart nats-server (or reload it) to apply {files.server_conf}")
