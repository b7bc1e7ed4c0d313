"""Artifacts: where a step's input comes from, and writing its output so that it appears whole or not at all."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from greenai.events.jobs import ArtifactRef, StepRequested
from greenai.events.results import Artifact, StepCompleted
from greenai.shared.jobs import JobError, Measured
from greenai.shared.model_io import (
    ModelNotFoundError,
    folder_bytes,
    folder_sha256,
    materialize,
    publish_folder,
    resolve_model,
    weight_bytes,
)

StepCompletedT = TypeVar("StepCompletedT", bound=StepCompleted)


def source_folder(ref: ArtifactRef, models_dir: Path) -> Path:
    """The folder a job reads: an earlier step's artifact, or the experiment's base model."""
    if ref.kind == "artifact":
        if not ref.path or not Path(ref.path).is_dir():
            raise JobError(f"source artifact {ref.path} does not exist on this machine", "invalid")
        return Path(ref.path)
    try:
        return materialize(resolve_model(ref.model), models_dir)
    except ModelNotFoundError as exc:
        raise JobError(str(exc), "invalid") from exc


@dataclass(frozen=True)
class Written:
    bytes: int
    weight_bytes: int
    sha256: str


@contextlib.contextmanager
def writing(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target`; on success it becomes `target` atomically,
    on failure it is removed. A half-written artifact is never visible under its name."""
    target_path = Path(target).resolve()
    target_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target_path.name}.", dir=target_path.parent))
    try:
        yield tmp
        publish_folder(tmp, target_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def describe_folder(folder: str | Path) -> Written:
    return Written(bytes=folder_bytes(folder), weight_bytes=weight_bytes(folder), sha256=folder_sha256(folder))


def step_completed(
    cls: type[StepCompletedT], job: StepRequested, target: Path, measured: Measured, source_parameters: int | None
) -> StepCompletedT:
    """The completion event of a step job, from what its child process returned: `bytes`,
    `weight_bytes`, `sha256`, `config` (validated parameters) and optional `metrics`."""
    out = measured.value
    return cls(
        job_id=job.job_id,
        episode=job.episode,
        step=job.step,
        method=job.method,
        params=out["config"],
        artifact=Artifact(path=str(target), bytes=out["bytes"], sha256=out["sha256"]),
        # effective bits: the weight files (quantized layers, scales, unquantized embeddings) over the
        # source's parameters; tokenizer and config files are not weights
        bits_per_weight=round(out["weight_bytes"] * 8 / source_parameters, 3) if source_parameters else None,
        wall_s=round(measured.wall_s, 3),
        peak_rss_mb=round(measured.peak_rss_mb, 1),
        metrics=out.get("metrics", {}),
    )


def compute_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
