"""The base model into the object store, once per experiment, so every job fetches it by content.

The reference is resolved here (an alias, a Hub id, or a model under the models dir), converted to a
loadable folder in a child process (a GGUF is dequantized to float32: ~1 GB of memory the coordinator
should not keep), hashed and uploaded; objects the store already holds are not sent again. An
evaluation or compression host then needs neither the model's package nor the Hub.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from greenai.events import EventData
from greenai.events.experiment import ExperimentFailed
from greenai.events.results import ModelStaged
from greenai.shared.artifact_store import ArtifactError, ArtifactStore
from greenai.shared.config import Settings
from greenai.shared.jobs import run_in_child
from greenai.shared.model_io import ModelNotFoundError, materialize, resolve_bus_model


def materialize_reference(reference: str, roots: list[str], models_dir: str) -> str:
    """Runs in a child process: the folder `from_pretrained` loads for this reference, as plain files
    (a Hub snapshot links into its blob store; an artifact holds bytes, not links)."""
    allowed = [Path(r).resolve() for r in (models_dir, *roots)]
    resolved = resolve_bus_model(reference, allowed)
    folder = materialize(resolved, Path(models_dir))
    links = [p for p in folder.rglob("*") if p.is_symlink()]
    if not links:
        return str(folder)
    for link in links:  # a link must not smuggle a file from elsewhere on this machine into the store
        if not any(link.resolve().is_relative_to(r) for r in allowed):
            raise ModelNotFoundError(f"{link.relative_to(folder)} in model {reference!r} links outside the models dir")
    plain = Path(models_dir) / "staged" / resolved.slug
    if not (plain / "config.json").is_file():
        plain.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{resolved.slug}.", dir=plain.parent))
        shutil.copytree(folder, tmp, symlinks=False, dirs_exist_ok=True)  # links become the bytes they name
        shutil.rmtree(plain, ignore_errors=True)
        os.replace(tmp, plain)
    return str(plain)


async def stage_base_model(model: str, settings: Settings, artifacts: ArtifactStore) -> tuple[str, EventData]:
    """`("staged", ModelStaged)`, or `("failed", ExperimentFailed)` with the reason."""
    start = time.perf_counter()
    try:
        roots = [str(r) for r in settings.allowed_model_roots]
        measured = await run_in_child(materialize_reference, model, roots, str(settings.models_dir))
        artifact = await artifacts.put_folder(Path(measured.value))
    except ModelNotFoundError as exc:
        return "failed", ExperimentFailed(reason=str(exc), error_type="ModelNotFoundError")
    except ArtifactError as exc:
        reason = f"the base model could not be staged: {exc}"
        return "failed", ExperimentFailed(reason=reason, error_type="ArtifactError")
    return "staged", ModelStaged(model=model, artifact=artifact, wall_s=round(time.perf_counter() - start, 3))
