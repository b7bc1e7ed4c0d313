"""Artifacts: where a step's input comes from, and writing its output so that it appears whole or not at all."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from greenai.events.jobs import ArtifactRef
from greenai.shared.jobs import JobError
from greenai.shared.model_io import (
    ModelNotFoundError,
    folder_bytes,
    folder_sha256,
    materialize,
    publish_folder,
    resolve_model,
    weight_bytes,
)


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
