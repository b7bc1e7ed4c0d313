"""The body of a pruning job, run in a fresh child process, and its typed contract.

The agent hands the child a `PruneJob` (the method's validated config, the fetched source folder,
where to write, calibration settings) and gets a `StepOutput` back; nothing crosses the process
boundary as an untyped dict (see shared.jobs.run_in_child).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.services.pruning.methods.auto import get_method
from greenai.services.pruning.methods.base import PruneConfig, PruneContext, decoder_linears
from greenai.shared.artifacts import StepOutput, describe_folder, writing
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


@dataclass(frozen=True)
class PruneJob:
    """What the child needs: the method's parameters already validated by the agent."""

    method: str
    config: PruneConfig
    source: str
    target: str
    data_dir: str | None
    calibration_samples: int
    calibration_seq_len: int
    seed: int
    device: str

    @classmethod
    def parse(
        cls,
        method: str,
        params: dict[str, Any],
        source: str,
        target: str,
        data_dir: str | None,
        calibration_samples: int,
        calibration_seq_len: int,
        seed: int,
        device: str,
    ) -> PruneJob:
        """The job with `params` validated by the method's own config (a JobError 'invalid' if not)."""
        config = get_method(method).parse(params)
        return cls(method, config, source, target, data_dir, calibration_samples, calibration_seq_len, seed, device)


def prune_to_folder(job: PruneJob) -> StepOutput:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(job.seed)
    method = get_method(job.method)
    if not isinstance(job.config, method.config_class):
        raise JobError(f"{job.method}: the job carries a {type(job.config).__name__}", "invalid")
    check_architecture(job.method, job.source)
    if "quantization_config" in json.loads((Path(job.source) / "config.json").read_text()):
        raise JobError("pruning needs a float model; this source is quantized (prune before quantizing)", "invalid")
    calibration = None
    if method.needs_calibration:
        if job.data_dir is None:
            raise JobError(f"{job.method} needs calibration text: set the data dir (GREENAI_DATA_DIR)", "invalid")
        calibration = calibration_texts(Path(job.data_dir), job.calibration_samples, job.calibration_seq_len, job.seed)
    model = AutoModelForCausalLM.from_pretrained(job.source, dtype=torch.float32, device_map=job.device)
    tokenizer = AutoTokenizer.from_pretrained(job.source)
    before = sum(p.numel() for p in model.parameters())
    method.prune(model, tokenizer, job.config, PruneContext(calibration, job.calibration_seq_len, job.seed, job.device))
    after = sum(p.numel() for p in model.parameters())
    metrics: dict[str, float | int | str | bool] = {
        **measure_sparsity(model),
        "parameters_before": before,
        "parameters_after": after,
        # zeros in a dense checkpoint take as much room as any other number, and a dense matmul
        # is no faster for them: only structured pruning shrinks size and latency
        "storage": "dense",
        "structured": method.structured,
    }
    with writing(job.target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return StepOutput(
        written=describe_folder(job.target), config=job.config.model_dump(), metrics=metrics, source_parameters=before
    )
