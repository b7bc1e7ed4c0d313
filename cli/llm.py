"""`greenai llm serve`: a local LLM for `--policy llm`, with schema-constrained answers, offline."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from greenai.cli.options import console
from greenai.shared.llama_server import ServerUnavailable, free_port, gguf_path, start, wait_ready
from greenai.shared.model_io import ModelNotFoundError

llm_app = typer.Typer(help="A local LLM server for the llm policy.", no_args_is_help=True)


@llm_app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 8765,
    model: Annotated[str, typer.Option(help="A GGUF: the alias smollm2-135m, or a path to a .gguf file.")] = (
        "smollm2-135m"
    ),
    threads: Annotated[int, typer.Option(min=1, help="llama.cpp threads; 1 is fastest on a small shared CPU.")] = 1,
    context: Annotated[int, typer.Option(min=512, help="Context length in tokens.")] = 8192,
) -> None:
    """Serve a GGUF with llama-cpp-python's OpenAI-compatible server on 127.0.0.1 until Ctrl-C.

    It enforces the decision's JSON schema (the llm policy detects the form it takes), so even a
    135M model answers with a valid decision."""
    try:
        gguf = gguf_path(model)
        port = port or free_port()
        proc = start(gguf, port, threads, context)
    except (ModelNotFoundError, ServerUnavailable) as exc:
        console.print(f"[red]cannot serve:[/red] {exc}")
        raise typer.Exit(1) from None
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(proc, url)
        console.print(f"serving {gguf.name} at {url} ({threads} thread(s)); point the coordinator at it:")
        print(f"export GREENAI_LLM_BASE_URL={url} GREENAI_LLM_MODEL={model}")
        proc.wait()
    except ServerUnavailable as exc:
        console.print(f"[red]{exc}[/red] (run `python -m llama_cpp.server --model {gguf}` to see why)")
        raise typer.Exit(1) from None
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
