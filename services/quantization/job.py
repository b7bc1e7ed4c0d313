"""The body of a quantization job; runs in a fresh child process (see shared.jobs.run_in_child)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenai.services.quantization.methods.auto import get_method
from greenai.services.quantization.methods.base import QuantizeContext
from greenai.shared.artifacts import describe_folder, writing
from greenai.shared.calibration import calibration_texts
from greenai.shared.jobs import JobError
from greenai.shared.model_io import count_parameters


def quantize_to_folder(
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

    torch.manual_seed(seed)
    from transformers import AutoConfig

    method = get_method(method_name)
    config = method.parse(params)
    method.check_family(AutoConfig.from_pretrained(source))  # config.json only: before any weights load
    calibration = None
    if method.uses_calibration(config):
        if data_dir is None:
            raise JobError(f"{method_name} needs calibration text: set the data dir (GREENAI_DATA_DIR)", "invalid")
        calibration = calibration_texts(Path(data_dir), calibration_samples, calibration_seq_len, seed)
    with writing(target) as tmp:
        method.quantize(config, QuantizeContext(Path(source), tmp, calibration, seed, device))
    written = describe_folder(target)
    return {
        "bytes": written.bytes,
        "weight_bytes": written.weight_bytes,
        "sha256": written.sha256,
        "source_parameters": count_parameters(source),
        "config": config.model_dump(),
    }
