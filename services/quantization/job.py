"""The body of a quantization job; runs in a fresh child process (see shared.jobs.run_in_child)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from greenai.services.quantization.methods.auto import get_method
from greenai.services.quantization.methods.base import QuantizeContext
from greenai.shared.calibration import calibration_texts
from greenai.shared.model_io import count_parameters, folder_bytes, folder_sha256, publish_folder, weight_bytes


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
    method = get_method(method_name)
    config = method.parse(params)
    calibration = None
    if method.uses_calibration(config):
        if data_dir is None:
            from greenai.shared.jobs import JobError

            raise JobError(f"{method_name} needs calibration text: set the data dir (GREENAI_DATA_DIR)", "invalid")
        calibration = calibration_texts(Path(data_dir), calibration_samples, calibration_seq_len, seed)
    target_path = Path(target)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target_path.name}.", dir=target_path.parent))
    try:
        method.quantize(config, QuantizeContext(Path(source), tmp, calibration, seed, device))
        publish_folder(tmp, target_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = folder_bytes(target_path)
    return {
        "bytes": size,
        "weight_bytes": weight_bytes(target_path),
        "sha256": folder_sha256(target_path),
        "source_parameters": count_parameters(source),
    }
