"""A NATS cluster on this machine: three `nats-server` processes on loopback, each with JetStream,
its own store dir and ports, routed to each other, so a replicated log can be tried (and broken)
locally: `greenai cluster up`, the failover tests and `bench/faults.py` use it.

Ports are picked free once and kept in `<dir>/cluster.json`, so a node restarted by name (or the
whole cluster started again on the same dir) comes back at the same address and with its data.
`NatsNode` is also usable on its own, for one restartable server at a fixed port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenai.shared.nats_server import NatsServerError, nats_server_binary

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together while picked, so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class NatsNode:
    """One nats-server with a config file of its own; can be stopped, killed, frozen and restarted."""

    name: str
    dir: Path
    port: int
    http_port: int
    cluster_port: int | None = None
    routes: list[int] = field(default_factory=list)
    cluster_name: str = "greenai-local"
    extra_config: str = ""
    tls: dict[str, Path] = field(default_factory=dict)  # cert_file, key_file, ca_file
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running and self.process is not None else None

    def config_text(self) -> str:
        store = self.dir.as_posix()  # the server adds "jetstream/"
        lines = [
            f'server_name: "{self.name}"',
            f'listen: "{HOST}:{self.port}"',
            f'http: "{HOST}:{self.http_port}"',
            f'jetstream {{ store_dir: "{store}" }}',
        ]
        if self.cluster_port is not None:
            routes = ", ".join(f'"nats-route://{HOST}:{p}"' for p in self.routes)
            lines.append(
                f'cluster {{ name: "{self.cluster_name}", listen: "{HOST}:{self.cluster_port}", routes: [{routes}] }}'
            )
        if self.tls:
            body = ", ".join(f'{key}: "{Path(path).as_posix()}"' for key, path in self.tls.items())
            lines.append(f"tls {{ {body} }}")
        if self.extra_config.strip():
            lines.append(self.extra_config)
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 20.0) -> None:
        if self.running:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "server.conf"
        config.write_text(self.config_text(), encoding="utf-8")
        os.chmod(config, 0o600)  # may hold keys from extra_config
        log = self.dir / "server.log"
        cmd = [str(nats_server_binary()), "-c", str(config), "-l", str(log)]
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise NatsServerError(f"nats-server {self.name} exited with {self.process.returncode}: {err.strip()}")
            if _accepts(self.port):
                return
            time.sleep(0.05)
        self.kill()
        raise NatsServerError(f"nats-server {self.name} did not accept connections within {timeout:.0f} s (log: {log})")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown: it hands over leaderships first); SIGKILL if it hangs."""
        if self.process is None:
            return
        self.resume()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye to the cluster."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        """SIGSTOP: the process and its sockets stay, it answers nothing (a hung machine)."""
        if self.running and self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running and self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def restart(self, *, kill: bool = False, timeout: float = 20.0) -> None:
        self.kill() if kill else self.stop()
        self.start(timeout)

    def monitor(self, path: str, timeout: float = 2.0) -> dict[str, Any]:
        """A monitoring endpoint's JSON, e.g. 'jsz' or 'jsz?streams=true'."""
        with urllib.request.urlopen(f"http://{HOST}:{self.http_port}/{path}", timeout=timeout) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data


class LocalCluster:
    """`size` routed nats-servers with JetStream on loopback, under `dir` (one folder per node)."""

    def __init__(
        self,
        dir: Path,
        size: int = 3,
        *,
        extra_config: str = "",
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_ca: Path | None = None,
        name: str = "greenai-local",
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.dir = dir
        self.dir.mkdir(parents=True, exist_ok=True)
        ports = self._ports(size)
        tls = {k: p for k, p in (("cert_file", tls_cert), ("key_file", tls_key), ("ca_file", tls_ca)) if p is not None}
        self.nodes: dict[str, NatsNode] = {}
        for i in range(size):
            node_name = f"n{i + 1}"
            client, http, route = ports[node_name]
            others = [ports[f"n{j + 1}"][2] for j in range(size) if j != i]
            self.nodes[node_name] = NatsNode(
                node_name, dir / node_name, client, http, route if size > 1 else None, others, name, extra_config, tls
            )

    def _ports(self, size: int) -> dict[str, list[int]]:
        """The ports this dir used before (same addresses after a restart), else fresh free ones."""
        record = self.dir / "cluster.json"
        with contextlib.suppress(OSError, ValueError, KeyError):
            saved = json.loads(record.read_text())["ports"]
            if len(saved) == size:
                return {k: list(v) for k, v in saved.items()}
        picked = free_ports(3 * size)
        ports = {f"n{i + 1}": picked[3 * i : 3 * i + 3] for i in range(size)}
        record.write_text(json.dumps({"ports": ports}, indent=1))
        return ports

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes.values()]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated: the value of GREENAI_NATS_URL."""
        return ",".join(self.urls)

    def node(self, name: str) -> NatsNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no node {name!r}; nodes: {', '.join(self.nodes)}") from None

    def start(self, timeout: float = 60.0) -> LocalCluster:
        deadline = time.monotonic() + timeout
        try:
            for node in self.nodes.values():
                node.start(max(1.0, deadline - time.monotonic()))
            self.wait_for_leader(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        return self

    def meta_leader(self) -> str | None:
        """The JetStream meta leader's name, as a running node sees it (None while electing)."""
        for node in self.nodes.values():
            if not node.running:
                continue
            with contextlib.suppress(OSError, ValueError):
                leader = node.monitor("jsz").get("meta_cluster", {}).get("leader")
                if leader:
                    return str(leader)
        return None

    def peers_current(self, leader: str) -> bool:
        """Whether the meta leader sees every other running node as a current peer: before that, a stream
        with one replica per node is refused ("no suitable peers for placement")."""
        running = {name for name, node in self.nodes.items() if node.running} - {leader}
        with contextlib.suppress(OSError, ValueError, KeyError):
            meta = self.node(leader).monitor("jsz").get("meta_cluster", {})
            current = {r.get("name") for r in meta.get("replicas", []) if r.get("current")}
            return running <= current
        return False

    def wait_for_leader(self, timeout: float = 30.0) -> str:
        """The meta leader's name, once it has one and sees every running node as a current peer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.meta_leader()
            if leader and self.peers_current(leader):
                return leader
            time.sleep(0.2)
        raise NatsServerError(
            f"the cluster elected no JetStream meta leader with all peers current within {timeout:.0f} s "
            f"(logs: {self.dir})"
        )

    def stream_leader(self, stream: str) -> str | None:
        """The node leading `stream`'s replicas, from the monitoring endpoint of a running node."""
        for node in self.nodes.values():
            if not node.running:
                continue
            with contextlib.suppress(OSError, ValueError):
                data = node.monitor("jsz?accounts=true&streams=true")
                for account in data.get("account_details", []):
                    for detail in account.get("stream_detail", []):
                        if detail.get("name") == stream and detail.get("cluster", {}).get("leader"):
                            return str(detail["cluster"]["leader"])
        return None

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
