"""Helpers for tests that run agents as real OS processes against a real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from greenai.events import Envelope
from greenai.shared.eventstore import EventStore
from tests.conftest import CACHE, REPO


def agent_env(nats_url: str, work_dir: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env.update(
        GREENAI_NATS_URL=nats_url,
        GREENAI_WORK_DIR=str(work_dir),
        GREENAI_DATA_DIR=str(data_dir),
        GREENAI_ACK_WAIT_S="4",
        GREENAI_LOG_FORMAT="json",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        # the test models live in the test cache; a run request may name models there and nowhere else
        GREENAI_MODEL_ROOTS=json.dumps([str(CACHE)]),
        **extra,
    )
    return env


def coordinator_model(work_dir: Path, model_dir: Path, name: str = "tiny") -> str:
    """Put a test model under the coordinator's models dir (a link) and return the reference a run names
    it by: a bare name, so no event carries a host path. Only the coordinator's machine has the model;
    every other agent gets it from the object store."""
    models = work_dir / "coordinator" / "models"
    models.mkdir(parents=True, exist_ok=True)
    link = models / name
    if not link.exists():
        link.symlink_to(model_dir.resolve(), target_is_directory=True)
    return name


def start_agent(name: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    """An agent process under its own NATS identity (its seed from the test's auth dir, next to the log dir)."""
    auth_dir = log_dir.parent / "auth"
    if (auth_dir / f"{name}.nk").is_file():
        env = {**env, "GREENAI_CREDENTIALS": str(auth_dir / f"{name}.nk"), "GREENAI_AUTH_DIR": str(auth_dir / "none")}
    # every agent its own work dir, as on its own machine: nothing can pass through the filesystem
    env = {**env, "GREENAI_WORK_DIR": str(Path(env["GREENAI_WORK_DIR"]) / name)}
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{name}-{len(list(log_dir.glob(name + '*')))}.log", "wb")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "greenai", "agent", name], env=env, stdout=log, stderr=log)


async def wait_for(
    store: EventStore,
    exp: str,
    predicate: Callable[[list[Envelope]], bool],
    timeout: float,
    procs: list[subprocess.Popen[bytes]] | None = None,
) -> list[Envelope]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        events = (await store.read(exp)).envelopes
        if predicate(events):
            return events
        for p in procs or []:
            if p.poll() is not None:
                raise AssertionError(f"agent {p.args} exited with {p.returncode}")
        if loop.time() > deadline:
            raise AssertionError(f"timed out; events so far: {[e.type for e in events]}")
        await asyncio.sleep(0.2)


def host_paths_in(events: list[Envelope], *roots: Path) -> list[str]:
    """Events whose JSON names a folder of this machine: the given roots (the test's tmp dir, the test
    cache), the home folder, the repository and the interpreter's prefix (where a model package lives)."""
    needles = [str(r) for r in (*roots, CACHE, Path.home(), REPO, Path(sys.prefix))]
    return [f"{e.type}: {n}" for e in events for n in needles if n in e.model_dump_json()]


def finished(events: list[Envelope]) -> bool:
    return any(e.type in ("experiment.completed", "experiment.failed") for e in events)


def stop_agents(procs: dict[str, subprocess.Popen[bytes]], timeout: float = 30) -> None:
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        p.wait(timeout)
