"""Running agents: one in this process (`greenai agent X`), or all as child processes."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

from greenai.shared.agent_main import SpecFactory, serve_process, serve_worker
from greenai.shared.auth import credentials_for
from greenai.shared.config import Settings
from greenai.shared.logging import configure_logging

# The built-in step agents: role -> the class whose `spec()` describes its jobs. A new kind of agent
# does not need to be here: it runs as its own process (shared.agent_main) and announces itself.
STEP_AGENTS = {
    "quantization": "greenai.services.quantization.agent:QuantizationAgent",
    "pruning": "greenai.services.pruning.agent:PruningAgent",
    "lora": "greenai.services.lora.agent:LoraAgent",
    "distillation": "greenai.services.distillation.agent:DistillationAgent",
    "evaluation": "greenai.services.evaluation.agent:EvaluationAgent",
}
AGENTS = ("coordinator", *STEP_AGENTS)


def spec_factory(name: str) -> SpecFactory:
    module, _, cls = STEP_AGENTS[name].partition(":")
    return lambda settings: getattr(importlib.import_module(module), cls)(settings).spec()


async def serve_agent(name: str, settings: Settings) -> None:
    if name in STEP_AGENTS:
        await serve_worker(name, spec_factory(name), settings)
        return
    if name != "coordinator":
        raise ValueError(f"unknown agent {name!r}; known: {', '.join(AGENTS)}")
    from greenai.services.coordinator.agent import Coordinator

    await serve_process(name, settings, lambda store, stop: Coordinator(store, settings).serve(stop))


def run_agent(name: str, settings: Settings) -> None:
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(serve_agent(name, settings))


# What an agent process may inherit from ours: the interpreter's needs, thread and Hugging Face settings.
PASSED_ON = (
    "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "OMP_WAIT_POLICY", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES", "PYTHONPATH",
)  # fmt: skip
PASSED_PREFIXES = ("HF_", "TRANSFORMERS_", "GPTQMODEL_", "TORCH")
# Secrets only the agent that uses them gets.
SECRETS = {"coordinator": ("OPENAI_API_KEY",)}


def settings_env(settings: Settings, nats_url: str, name: str) -> dict[str, str]:
    """The environment of one agent: our settings, its own credentials and nothing else it does not need
    (the evaluation agent, which runs model-written code, never sees the LLM key)."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ON or k.startswith(PASSED_PREFIXES)}
    env.update({k: os.environ[k] for k in SECRETS.get(name, ()) if k in os.environ})
    for field, value in settings.model_dump(mode="json", exclude={"credentials", "auth_dir"}).items():
        if value is not None and (field != "llm_base_url" or name == "coordinator"):
            env[f"GREENAI_{field.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    creds = settings.credentials or credentials_for(settings.auth_path, name)
    if creds is not None:
        env["GREENAI_CREDENTIALS"] = str(creds)
    env["GREENAI_AUTH_DIR"] = str(settings.auth_path / "none")  # an agent finds no other role's seed
    env["GREENAI_NATS_URL"] = nats_url
    env["GREENAI_LOG_FORMAT"] = "json"
    return env


def spawn_agent(name: str, settings: Settings, nats_url: str, log_dir: Path | None) -> subprocess.Popen[bytes]:
    out: IO[bytes] | int | None = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        out = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "greenai", "agent", name],
        env=settings_env(settings, nats_url, name),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
    )


def stop_all(procs: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
