"""The body of a pruning job, run in a fresh child process, and its typed contract.

The agent hands the child a `PruneJob` (the method's validated config, the fetched source folder,
where to write, calibration settings) and gets a `StepOutput` back; nothing crosses the process
boundary as an untyped dict (see shared.job_contract, shared.jobs.run_in_child).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from greenai.services.pruning.methods.auto import get_method
from greenai.services.pruning.methods.base import PruneConfig, PruneContext, PruningMethod, decoder_linears
from greenai.shared.artifacts import StepOutput, describe_folder, writing
from greenai.shared.job_contract import CalibratedStepJob
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


class PruneJob(CalibratedStepJob[PruneConfig]):
    """What the child needs: the method's parameters already validated by the agent."""

    @classmethod
    def method_of(cls, name: str) -> PruningMethod:
        return get_method(name)


def prune_to_folder(job: PruneJob) -> StepOutput:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(job.seed)
    job.check_config()
    method = get_method(job.method)
    check_architecture(job.method, job.source)
    if "quantization_config" in json.loads((Path(job.source) / "config.json").read_text()):
        raise JobError("pruning needs a float model; this source is quantized (prune before quantizing)", "invalid")
    calibration = job.calibration(method.needs_calibration)
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
