"""`greenai cluster up`: a three-node NATS cluster with JetStream on this machine, until Ctrl-C.

For trying replication and failover locally (kill a node, watch the log carry on); production
clusters run one node per machine (deploy/nats-cluster/).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from greenai.shared.nats_cluster import LocalCluster
from greenai.shared.nats_server import NatsServerError

cluster_app = typer.Typer(help="A local NATS cluster (three nats-servers on loopback) for replicated logs.")
console = Console()


@cluster_app.command()
def up(
    dir: Annotated[
        Path, typer.Option("--dir", help="Store dirs, logs and the ports (kept for the next start).")
    ] = Path("data/nats-cluster"),
    size: Annotated[int, typer.Option(min=1, max=7, help="Number of nodes.")] = 3,
    extra_config: Annotated[
        Path | None, typer.Option(help="A nats-server config fragment added to every node (auth, TLS, limits).")
    ] = None,
) -> None:
    """Start the nodes, wait for a JetStream meta leader, print GREENAI_NATS_URL; Ctrl-C stops them."""
    extra = extra_config.read_text(encoding="utf-8") if extra_config is not None else ""
    cluster = LocalCluster(dir.expanduser().resolve(), size, extra_config=extra)
    try:
        cluster.start()
    except NatsServerError as exc:
        console.print(f"[red]cluster did not come up:[/red] {exc}")
        raise typer.Exit(1) from None
    replicas = min(3, size)
    console.print(f"{size} nodes up, JetStream meta leader {cluster.meta_leader()}; data in {cluster.dir}")
    for name, node in cluster.nodes.items():
        console.print(f"  {name}: {node.url} (monitoring http://127.0.0.1:{node.http_port}, pid {node.pid})")
    console.print("Point every command and agent at the cluster, with a replicated stream:")
    print(f"GREENAI_NATS_URL={cluster.url}")
    print(f"GREENAI_REPLICAS={replicas}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            for name, node in cluster.nodes.items():
                if not node.running and node.process is not None and node.process.returncode not in (None, 0):
                    console.print(f"[yellow]{name} exited ({node.process.returncode}); restarting it[/yellow]")
                    node.start()
    finally:
        console.print("stopping the cluster")
        cluster.stop()
