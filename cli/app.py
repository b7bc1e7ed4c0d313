"""The `greenai` command line: run experiments, run agents, watch and replay the event log.

This module only assembles the commands (in the order `greenai --help` lists them); each command
group lives in its own module.
"""

from __future__ import annotations

import signal
import sys

import typer

from greenai.cli.agent_commands import agent, up
from greenai.cli.artifacts import gc, pull
from greenai.cli.auth import auth_app
from greenai.cli.cancel import cancel
from greenai.cli.cluster import cluster_app
from greenai.cli.dashboard import dashboard
from greenai.cli.inspection import analyze, experiments, replay, tail
from greenai.cli.llm import llm_app
from greenai.cli.run import run
from greenai.cli.spec import spec
from greenai.cli.transfer import export, import_events

app = typer.Typer(
    help="GreenAI: agentic compression of LLMs, driven by an event log on NATS JetStream.", no_args_is_help=True
)
app.add_typer(auth_app, name="auth")
app.command("pull")(pull)
app.command("gc")(gc)
app.add_typer(cluster_app, name="cluster")
app.add_typer(llm_app, name="llm")
app.command()(run)
app.command()(cancel)
app.command()(spec)
app.command()(agent)
app.command()(up)
app.command()(tail)
app.command()(export)
app.command("import")(import_events)
app.command()(replay)
app.command()(analyze)
app.command()(experiments)
app.command()(dashboard)


def _exit_on_sigterm() -> None:
    """SIGTERM ends `run` and `up` like Ctrl-C: through their finally blocks, which stop the agents
    and the embedded nats-server they started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def main() -> None:
    _exit_on_sigterm()
    app()
