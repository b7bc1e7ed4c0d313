"""The body of a quantization job, run in a fresh child process, and its typed contract.

The agent hands the child a `QuantizeJob` (the method's validated config, the fetched source folder,
where to write, calibration settings) and gets a `StepOutput` back; nothing crosses the process
boundary as an untyped dict (see shared.jobs.run_in_child).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.services.quantization.methods.auto import get_method
from greenai.services.quantization.methods.base import MethodConfig, QuantizeContext
from greenai.shared.artifacts import StepOutput, describe_folder, writing
from greenai.shared.calibration import calibration_texts
from greenai.shared.jobs import JobError
from greenai.shared.model_io import count_parameters


@dataclass(frozen=True)
class QuantizeJob:
    """What the child needs: the method's parameters already validated by the agent."""

    method: str
    config: MethodConfig
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
    ) -> QuantizeJob:
        """The job with `params` validated by the method's own config (a JobError 'invalid' if not)."""
        config = get_method(method).parse(params)
        return cls(method, config, source, target, data_dir, calibration_samples, calibration_seq_len, seed, device)


def quantize_to_folder(job: QuantizeJob) -> StepOutput:
    import torch

    torch.manual_seed(job.seed)
    from transformers import AutoConfig

    method = get_method(job.method)
    if not isinstance(job.config, method.config_class):
        raise JobError(f"{job.method}: the job carries a {type(job.config).__name__}", "invalid")
    method.check_family(AutoConfig.from_pretrained(job.source))  # config.json only: before any weights load
    calibration = None
    if method.uses_calibration(job.config):
        if job.data_dir is None:
            raise JobError(f"{job.method} needs calibration text: set the data dir (GREENAI_DATA_DIR)", "invalid")
        calibration = calibration_texts(Path(job.data_dir), job.calibration_samples, job.calibration_seq_len, job.seed)
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
