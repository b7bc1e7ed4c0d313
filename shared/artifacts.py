"""Artifacts: where a step's input comes from, and writing its output so that it appears whole or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from nats.js import JetStreamContext

from greenai.events.artifacts import Artifact
from greenai.events.jobs import ArtifactRef, StepRequested, check_job_id
from greenai.events.results import Energy, StepCompleted
from greenai.events.subjects import check_experiment_id
from greenai.shared.artifact_store import ArtifactMismatch, ArtifactMissing, ArtifactStore
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


class UsesArtifacts:
    """An agent that reads and writes artifacts through the object store of the bus it serves on."""

    settings: Settings
    artifacts: ArtifactStore | None = None

    def attach(self, js: JetStreamContext) -> None:
        s = self.settings
        self.artifacts = ArtifactStore(
            js, s.artifact_bucket, s.artifact_cache_dir, replicas=s.replicas, chunk_bytes=s.artifact_chunk_bytes
        )

    def store(self) -> ArtifactStore:
        if self.artifacts is None:
            raise RuntimeError("attach() the agent to a bus before it serves jobs")
        return self.artifacts

    async def fetch(self, ref: ArtifactRef) -> Path:
        """The folder a job reads, fetched by content and verified: an earlier step's artifact or the
        staged base model. A base model named only by reference (a log from before staging) must be an
        alias, a Hub id or a model under the models dir. A message cannot make an agent read a path."""
        if ref.artifact is not None:
            try:
                return await self.store().get_folder(ref.artifact)
            except (ArtifactMissing, ArtifactMismatch) as exc:  # final: retrying fetches the same bytes
                raise JobError(f"source artifact {ref.artifact.sha256[:12]}: {exc}", "invalid") from exc
        try:
            resolved = resolve_bus_model(ref.model, self.settings.allowed_model_roots)
            return await asyncio.to_thread(materialize, resolved, self.settings.models_dir)
        except ModelNotFoundError as exc:
            raise JobError(str(exc), "invalid") from exc

    async def publish(self, folder: Path) -> Artifact:
        """Upload a finished output folder (before its completion event), then keep it as the cache's copy."""
        store = self.store()
        artifact = await store.put_folder(folder)
        await store.adopt(folder, artifact)
        return artifact


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


@dataclass(frozen=True)
class StepOutput:
    """What a step job's child process hands back to its agent, typed across the process boundary:
    the folder it wrote, the validated parameters as recorded, its metrics, the source's parameter count."""

    written: Written
    config: dict[str, Any]
    metrics: dict[str, float | int | str | bool] = field(default_factory=dict)
    source_parameters: int | None = None


def step_completed(
    cls: type[StepCompletedT], job: StepRequested, artifact: Artifact, measured: Measured, source_parameters: int | None
) -> StepCompletedT:
    """The completion event of a step job, from what its child process returned: a `StepOutput`, or a
    mapping of `bytes`, `weight_bytes`, `sha256`, `config` and optional `metrics`."""
    out = measured.value
    if not isinstance(out, StepOutput):
        written = Written(bytes=out["bytes"], weight_bytes=out["weight_bytes"], sha256=out["sha256"])
        out = StepOutput(written, out["config"], out.get("metrics", {}))
    return cls(
        job_id=job.job_id,
        episode=job.episode,
        step=job.step,
        method=job.method,
        params=out.config,
        artifact=artifact,
        # effective bits: the weight files (quantized layers, scales, unquantized embeddings) over the
        # source's parameters; tokenizer and config files are not weights
        bits_per_weight=round(out.written.weight_bytes * 8 / source_parameters, 3) if source_parameters else None,
        wall_s=round(measured.wall_s, 3),
        peak_rss_mb=round(measured.peak_rss_mb, 1),
        energy=Energy(**measured.energy.as_event()) if measured.energy is not None else None,
        metrics=dict(out.metrics),
    )


def compute_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
