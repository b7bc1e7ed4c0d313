"""The body of a quantization job, run in a fresh child process, and its typed contract.

The agent hands the child a `QuantizeJob` (the method's validated config, the fetched source folder,
where to write, calibration settings) and gets a `StepOutput` back; nothing crosses the process
boundary as an untyped dict (see shared.job_contract, shared.jobs.run_in_child).
"""

from __future__ import annotations

from pathlib import Path

from greenai.services.quantization.methods.auto import get_method
from greenai.services.quantization.methods.base import MethodConfig, QuantizationMethod, QuantizeContext
from greenai.shared.artifacts import StepOutput, describe_folder, writing
from greenai.shared.job_contract import CalibratedStepJob
from greenai.shared.model_io import count_parameters


class QuantizeJob(CalibratedStepJob[MethodConfig]):
    """What the child needs: the method's parameters already validated by the agent."""

    @classmethod
    def method_of(cls, name: str) -> QuantizationMethod:
        return get_method(name)


def quantize_to_folder(job: QuantizeJob) -> StepOutput:
    import torch

    torch.manual_seed(job.seed)
    from transformers import AutoConfig

    job.check_config()
    method = get_method(job.method)
    method.check_family(AutoConfig.from_pretrained(job.source))  # config.json only: before any weights load
    calibration = job.calibration(method.uses_calibration(job.config))
    with writing(job.target) as tmp:
        ctx = QuantizeContext(Path(job.source), tmp, calibration, job.seed, job.device)
        metrics = method.quantize(job.config, ctx)
        method.store_unquantized(ctx)  # embeddings, lm_head, norms in 16 bit (methods/storage.py)
    return StepOutput(
        written=describe_folder(job.target),
        config=job.config.model_dump(),
        metrics=metrics or {},
        source_parameters=count_parameters(job.source),
    )
