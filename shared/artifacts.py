"""Artifacts: where a step's input comes from, and writing its output so that it appears whole or not at all."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from greenai.events.jobs import ArtifactRef, StepRequested, check_job_id
from greenai.events.results import Artifact, StepCompleted
from greenai.events.subjects import check_experiment_id
from greenai.shared.config import Settings
from greenai.shared.jobs import JobError, Measured
from greenai.shared.model_io import (
    ModelNotFoundError,
    folder_bytes,
    folder_sha256,
    materialize,
    publish_folder,
    resolve_bus_model,
    weight_bytes,
)

StepCompletedT = TypeVar("StepCompletedT", bound=StepCompleted)


def source_folder(ref: ArtifactRef, settings: Settings) -> Path:
    """The folder a job reads: an earlier step's artifact (inside this agent's artifacts dir, and
    matching its recorded hash), or the experiment's base model (an alias, a Hub id or a model under
    the models dir). A message cannot make an agent read a path of its choosing."""
    if ref.kind == "artifact":
        if not ref.path or not ref.sha256:
            raise JobError("a source artifact needs a path and its sha256", "invalid")
        root = settings.artifacts_dir.resolve()
        path = Path(ref.path).resolve()
        if not path.is_relative_to(root):
            raise JobError(f"source artifact {ref.path[:200]!r} is outside the artifacts dir", "invalid")
        if not path.is_dir():
            raise JobError(f"source artifact {ref.path[:200]} does not exist on this machine", "invalid")
        if folder_sha256(path) != ref.sha256:
            raise JobError(f"source artifact {path} does not match its recorded hash", "invalid")
        return path
    try:
        return materialize(resolve_bus_model(ref.model, settings.allowed_model_roots), settings.models_dir)
    except ModelNotFoundError as exc:
        raise JobError(str(exc), "invalid") from exc


def job_output_dir(settings: Settings, experiment_id: str, job_id: str) -> Path:
    """Where a job writes its artifact: derived from validated ids, and checked to resolve inside the
    artifacts dir before anything is written (publishing replaces the folder)."""
    root = settings.artifacts_dir.resolve()
    target = (root / check_experiment_id(experiment_id) / check_job_id(job_id)).resolve()
    if not target.is_relative_to(root) or target == root:
        raise JobError(f"job {job_id[:200]!r} would write outside the artifacts dir", "invalid")
    return target


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
