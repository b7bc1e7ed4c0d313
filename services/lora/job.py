"""The body of a LoRA job, run in a fresh child process, and its typed contract.

The agent hands the child a `LoraJob` (the method's validated parameters, the fetched source folder,
where to write, the data dir for training text) and gets a `StepOutput` back; nothing crosses the
process boundary as an untyped dict (shared.job_contract). What each method writes is said in `methods/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.services.lora.methods.auto import get_method
from greenai.services.lora.methods.base import LoraContext, LoraMethod, source_quantization
from greenai.services.lora.train import LoraParams
from greenai.shared.artifacts import StepOutput, describe_folder, writing
from greenai.shared.calibration import calibration_texts
from greenai.shared.job_contract import StepJob


@dataclass(frozen=True, kw_only=True)
class LoraJob(StepJob[LoraParams]):
    """What the child needs: everything resolved and validated by the agent. Training reads `samples`
    texts (at least steps x batch size) of the config's own sequence length, so no calibration settings."""

    data_dir: str
    samples: int

    @classmethod
    def method_of(cls, name: str) -> LoraMethod:
        return get_method(name)

    @classmethod
    def parse(
        cls, method: str, params: dict[str, Any], source: str, target: str, data_dir: str, samples: int, seed: int,
        device: str,
    ) -> LoraJob:  # fmt: skip
        """The job with `params` validated (a JobError 'invalid' for an unknown method or bad parameters)."""
        config = cls.validated(method, params)
        return cls(
            method=method, config=config, source=source, target=target, data_dir=data_dir, samples=samples, seed=seed,
            device=device,
        )  # fmt: skip


def lora_to_folder(job: LoraJob) -> StepOutput:
    from transformers import AutoTokenizer

    job.check_config()
    method, config = get_method(job.method), job.config
    source = Path(job.source)
    method.check_source(source_quantization(source))  # config.json only: before any weights load
    texts = calibration_texts(
        Path(job.data_dir), max(job.samples, config.steps * config.batch_size), config.seq_len, job.seed + 1
    )
    tokenizer = AutoTokenizer.from_pretrained(source)
    with writing(job.target) as tmp:
        result = method.train_to(config, tokenizer, LoraContext(source, tmp, texts, job.seed, job.device))
    return StepOutput(
        written=describe_folder(job.target),
        config=config.model_dump(),
        metrics={
            "kept_as": method.kept_as,
            "merged": method.kept_as == "merged",
            "train_loss_start": result.loss_start,
            "train_loss_end": result.loss_end,
            "trainable_parameters": result.trainable_parameters,
            "steps": config.steps,
        },
    )
