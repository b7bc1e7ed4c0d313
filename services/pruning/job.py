"""The body of a pruning job; runs in a fresh child process (see shared.jobs.run_in_child)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from greenai.services.pruning.methods.auto import get_method
from greenai.services.pruning.methods.base import PruneContext, decoder_linears
from greenai.shared.artifacts import describe_folder, writing
from greenai.shared.calibration import calibration_texts
from greenai.shared.jobs import JobError
from greenai.shared.model_layout import folder_model_type


def measure_sparsity(model: Any) -> dict[str, float]:
    linears = decoder_linears(model)
    zeros = sum(int((p.weight == 0).sum()) for p in linears.values())
    total = sum(p.weight.numel() for p in linears.values())
    params = sum(p.numel() for p in model.parameters())
    return {"sparsity": round(zeros / total, 6) if total else 0.0, "sparsity_overall": round(zeros / params, 6)}


def check_architecture(method_name: str, source: str | Path) -> str:
    """The source's model family if `method_name` supports it; else a JobError `unsupported`.
    Reads only config.json, so it runs before any weights are loaded (and is never retried)."""
    return get_method(method_name).check_family(folder_model_type(source))


def prune_to_folder(
    method_name: str,
    params: dict[str, Any],
    source: str,
    target: str,
    data_dir: str | None,
    calibration_samples: int,
    calibration_seq_len: int,
    seed: int,
    device: str,
) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    method = get_method(method_name)
    config = method.parse(params)
    check_architecture(method_name, source)
    if "quantization_config" in json.loads((Path(source) / "config.json").read_text()):
        raise JobError("pruning needs a float model; this source is quantized (prune before quantizing)", "invalid")
    calibration = None
    if method.needs_calibration:
        if data_dir is None:
            raise JobError(f"{method_name} needs calibration text: set the data dir (GREENAI_DATA_DIR)", "invalid")
        calibration = calibration_texts(Path(data_dir), calibration_samples, calibration_seq_len, seed)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, device_map=device)
    tokenizer = AutoTokenizer.from_pretrained(source)
    before = sum(p.numel() for p in model.parameters())
    method.prune(model, tokenizer, config, PruneContext(calibration, calibration_seq_len, seed, device))
    after = sum(p.numel() for p in model.parameters())
    metrics: dict[str, Any] = {
        **measure_sparsity(model),
        "parameters_before": before,
        "parameters_after": after,
        # zeros in a dense checkpoint take as much room as any other number, and a dense matmul
        # is no faster for them: only structured pruning shrinks size and latency
        "storage": "dense",
        "structured": method.structured,
    }
    with writing(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    written = describe_folder(target)
    return {
        "bytes": written.bytes,
        "weight_bytes": written.weight_bytes,
        "sha256": written.sha256,
        "source_parameters": before,
        "metrics": metrics,
        "config": config.model_dump(),
    }
