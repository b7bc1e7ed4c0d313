"""`greenai spec`: a model's specs, this machine's hardware, and what each method would need here."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from greenai.cli.options import console


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = ("avx", "avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "fma", "f16c")
    return [f for f in wanted if f in flags]


def hardware_probe() -> dict[str, Any]:
    import psutil
    import torch

    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append({"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)})
    memory = psutil.virtual_memory()
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "ram_gib": round(memory.total / 2**30, 1),
        "ram_available_gib": round(memory.available / 2**30, 1),
        "gpus": gpus,
    }


def feasibility(float32_bytes: int, hardware: dict[str, Any]) -> list[dict[str, Any]]:
    """Per method: runs here or not, and its estimated peak memory against what this machine has."""
    from greenai.services.quantization.methods.auto import METHODS

    have = hardware["ram_available_gib"] * 2**30
    device = "cuda" if hardware["gpus"] else "cpu"
    rows = []
    for name, cls in sorted(METHODS.items()):
        req = cls.requirements
        need = req.memory_factor * float32_bytes
        runs = (req.cpu if device == "cpu" else req.cuda) and need <= have
        why = "" if runs else ("needs CUDA" if device == "cpu" and not req.cpu else "not enough memory")
        rows.append(
            {
                "method": name,
                "kind": "quantize",
                "device": device,
                "needs_gib": round(need / 2**30, 2),
                "runs_here": runs,
                "why_not": why,
                "note": req.note,
            }
        )
    for name, factor in (("pruning (any method)", 3.0), ("lora", 3.0), ("qlora", 1.5)):
        need = factor * float32_bytes
        rows.append({"method": name, "kind": "prune" if name.startswith("pruning") else "lora", "device": device,
                     "needs_gib": round(need / 2**30, 2), "runs_here": need <= have,
                     "why_not": "" if need <= have else "not enough memory", "note": ""})  # fmt: skip
    return rows


def spec(
    model: Annotated[str, typer.Argument(help="Alias, .gguf file, local folder or Hugging Face id.")] = "smollm2-135m",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A model's specs (no weights loaded), this machine's hardware, and which methods fit it."""
    from greenai.services.coordinator.spec import infer_spec
    from greenai.shared.model_io import ModelNotFoundError

    try:
        model_spec = infer_spec(model)
    except ModelNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    hardware = hardware_probe()
    float32_bytes = 4 * (model_spec.num_parameters or 0)
    rows = feasibility(float32_bytes, hardware)
    if as_json:
        print(json.dumps({"spec": model_spec.model_dump(), "hardware": hardware, "methods": rows}, indent=2))
        return
    table = Table("field", "value", title=f"model: {model}")
    for key, value in model_spec.model_dump().items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    console.print(table)
    hw = Table("field", "value", title="this machine")
    for key, value in hardware.items():
        hw.add_row(key, str(value))
    console.print(hw)
    feas = Table("method", "kind", "device", "needs GiB", "runs here", "note", title="methods on this machine")
    for r in rows:
        feas.add_row(
            r["method"],
            r["kind"],
            r["device"],
            str(r["needs_gib"]),
            "yes" if r["runs_here"] else f"no: {r['why_not']}",
            r["note"],
        )
    console.print(feas)
