"""A local OpenAI-compatible server that enforces a JSON schema: llama-cpp-python's, on a GGUF file.

The offline default for the LLM policy in tests and benches: it constrains decoding to the schema
sent as `{"type": "json_object", "schema": ...}`, so even a 135M model answers with a valid,
enum-constrained decision. Bound to 127.0.0.1 only. One thread by default: on a small shared CPU,
llama.cpp's threads spin waiting for each other (measured here: 43 ms/token with 1 thread,
670 ms/token with 2 while other work ran).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from greenai.shared.model_io import ModelNotFoundError, resolve_model

SERVER_MODULES = ("llama_cpp", "sse_starlette", "starlette_context", "uvicorn", "fastapi")


class ServerUnavailable(RuntimeError):
    pass


def gguf_path(reference: str) -> Path:
    """The GGUF file of an alias (`smollm2-135m`) or a path to a .gguf file."""
    model = resolve_model(reference)
    if model.kind != "gguf" or model.gguf_file is None:
        raise ModelNotFoundError(f"{reference!r} is not a GGUF model (an alias such as smollm2-135m, or a .gguf file)")
    return Path(model.location) / model.gguf_file


def missing_modules() -> list[str]:
    return [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(gguf: Path, port: int, threads: int = 1, context: int = 8192) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", str(context),
    ]  # fmt: skip


def start(
    gguf: Path, port: int, threads: int = 1, context: int = 8192, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start the server (not yet ready: see `wait_ready`); its output goes to `log`, or is discarded."""
    missing = missing_modules()
    if missing:
        raise ServerUnavailable(
            f"llama-cpp-python's server needs {', '.join(missing)}: pip install 'greenai[models]' "
            "(or: pip install sse-starlette starlette-context, without rebuilding llama-cpp-python)"
        )
    if not gguf.is_file():
        raise ModelNotFoundError(f"GGUF file {gguf} does not exist")
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(command(gguf, port, threads, context), stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def wait_ready(proc: subprocess.Popen[bytes], base_url: str, timeout_s: float = 120.0) -> list[str]:
    """Block until the server lists its model; returns the model ids. Raises if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                return [m["id"] for m in json.load(response).get("data", [])]
        except OSError:
            if proc.poll() is not None:
                raise ServerUnavailable(f"the llama.cpp server exited with code {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"the llama.cpp server was not ready after {timeout_s:.0f} s") from None
            time.sleep(0.5)
