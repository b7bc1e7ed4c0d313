"""`greenai spec`: a model's specs, this machine's hardware, and what each method would need here."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


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
