"""The body of a distillation job, run in a fresh child process, and its typed contract.

The agent hands the child a `DistillJob` (validated parameters, the fetched student and teacher
folders, where to write) and gets a `DistillOutput` back; nothing crosses the process boundary as an
untyped dict. The output folder is a plain float model: `from_pretrained(folder)` loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from greenai.services.distillation.train import KdParams, distill
from greenai.shared.artifacts import describe_folder, writing
from greenai.shared.calibration import calibration_texts
from greenai.shared.jobs import JobError

METHODS = ("kd",)


def parse(method: str, params: dict[str, Any]) -> KdParams:
    """The job's parameters, or a JobError 'invalid' before any work."""
    if method not in METHODS:
        raise JobError(f"unknown distillation method {method!r}; known: {', '.join(METHODS)}", "invalid")
    try:
        return KdParams.model_validate(params)
    except ValidationError as exc:
        raise JobError(f"{method}: invalid parameters: {exc.errors(include_url=False)}", "invalid") from exc


def check_trainable(folder: Path, what: str) -> dict[str, Any]:
    """A float model's config, or 'invalid': distillation trains float weights, it cannot train packed ones."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise JobError(f"the {what} has no readable config.json: {exc}", "invalid") from exc
    if not isinstance(config, dict):
        raise JobError(f"the {what}'s config.json is not an object", "invalid")
    quant = config.get("quantization_config")
    if quant:
        method = quant.get("quant_method") if isinstance(quant, dict) else quant
        raise JobError(
            f"distillation trains float weights; the {what} is quantized ({method}): distil before quantizing",
            "invalid",
        )
    return config


@dataclass(frozen=True)
class DistillJob:
    """What the child needs: everything resolved and validated by the agent."""

    params: KdParams
    student: str
    teacher: str
    target: str
    data_dir: str
    seed: int
    device: str


@dataclass(frozen=True)
class DistillOutput:
    bytes: int
    weight_bytes: int
    sha256: str
    config: dict[str, Any]
    metrics: dict[str, float | int | str | bool] = field(default_factory=dict)

    def as_value(self) -> dict[str, Any]:
        """The shape `shared.artifacts.step_completed` reads."""
        return {
            "bytes": self.bytes, "weight_bytes": self.weight_bytes, "sha256": self.sha256,
            "config": self.config, "metrics": dict(self.metrics),
        }  # fmt: skip


def distill_to_folder(job: DistillJob) -> DistillOutput:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    params = job.params
    student_dir, teacher_dir = Path(job.student), Path(job.teacher)
    check_trainable(student_dir, "student")
    check_trainable(teacher_dir, "teacher")
    texts = calibration_texts(Path(job.data_dir), params.steps * params.batch_size, params.seq_len, job.seed + 1)
    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float32, device_map=job.device)
    student = AutoModelForCausalLM.from_pretrained(student_dir, dtype=torch.float32, device_map=job.device)
    try:
        result = distill(student, teacher, tokenizer, texts, params, job.seed)
    except ValueError as exc:  # a teacher that cannot teach this student: retrying cannot change it
        raise JobError(str(exc), "invalid") from exc
    del teacher
    with writing(job.target) as tmp:
        student.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    written = describe_folder(job.target)
    return DistillOutput(
        bytes=written.bytes,
        weight_bytes=written.weight_bytes,
        sha256=written.sha256,
        config=params.model_dump(),
        metrics={
            "train_loss_start": result.loss_start,
            "train_loss_end": result.loss_end,
            "trainable_parameters": result.trainable_parameters,
            "masked_zeros": result.masked_parameters,
            "train_s": result.train_s,
            "steps": params.steps,
        },
    )
