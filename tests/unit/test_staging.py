"""Staging the base model: once into the object store, as plain files, from an allowed reference only."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from greenai.events.experiment import ExperimentFailed
from greenai.events.results import ModelStaged
from greenai.services.coordinator.staging import materialize_reference, stage_base_model
from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.model_io import ModelNotFoundError


def small_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


async def test_a_model_under_the_models_dir_is_staged_by_content_and_once(store: EventStore, tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path / "work")
    small_model(settings.models_dir / "mini")
    artifacts = ArtifactStore(store.js, f"s{uuid.uuid4().hex[:8]}", tmp_path / "cache")
    key, event = await stage_base_model("mini", settings, artifacts)
    assert key == "staged" and isinstance(event, ModelStaged)
    assert event.model == "mini" and {f.path for f in event.artifact.files} == {"config.json", "model.safetensors"}
    assert str(tmp_path) not in event.model_dump_json()
    again = await stage_base_model("mini", settings, artifacts)
    assert isinstance(again[1], ModelStaged) and again[1].artifact == event.artifact  # content-addressed
    fetched = await ArtifactStore(store.js, artifacts.bucket, tmp_path / "elsewhere").get_folder(event.artifact)
    assert (fetched / "model.safetensors").read_bytes() == b"weights"


async def test_a_reference_outside_the_allowed_roots_fails_the_experiment(store: EventStore, tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path / "work")
    outside = small_model(tmp_path / "outside")
    artifacts = ArtifactStore(store.js, f"s{uuid.uuid4().hex[:8]}", tmp_path / "cache")
    for reference in (str(outside), "../../outside", "file:///etc"):
        key, event = await stage_base_model(reference, settings, artifacts)
        assert key == "failed" and isinstance(event, ExperimentFailed), reference
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.complete"))


def test_links_become_plain_files_and_a_link_out_of_the_roots_is_refused(tmp_path: Path) -> None:
    models = tmp_path / "models"
    blobs = small_model(models / "hub" / "blobs")  # as in a Hub snapshot: links into a blob store
    snapshot = models / "snap"
    snapshot.mkdir()
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).symlink_to(blobs / name)
    plain = Path(materialize_reference("snap", [], str(models)))
    assert plain != snapshot and (plain / "model.safetensors").read_bytes() == b"weights"
    assert not any(p.is_symlink() for p in plain.rglob("*"))
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the store")
    shutil.rmtree(snapshot)
    snapshot.mkdir()
    (snapshot / "config.json").symlink_to(blobs / "config.json")
    (snapshot / "tokenizer.json").symlink_to(secret)
    with pytest.raises(ModelNotFoundError, match="links outside"):
        materialize_reference("snap", [], str(models))
