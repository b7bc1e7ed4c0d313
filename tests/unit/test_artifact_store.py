"""The object store as the agents use it: folders by content, deduplicated, verified, cached, collected."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from greenai.events.artifacts import Artifact, ArtifactFile
from greenai.shared.artifact_store import ArtifactMismatch, ArtifactMissing, ArtifactStore
from greenai.shared.eventstore import EventStore


def folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


async def count_objects(store: EventStore, bucket: str) -> int:
    obs = await store.js.object_store(bucket)
    try:
        return len([i for i in await obs.list() if not i.deleted])
    except Exception:
        return 0


async def test_a_folder_roundtrips_by_content_and_identical_files_are_stored_once(
    store: EventStore, tmp_path: Path
) -> None:
    up = ArtifactStore(store.js, "t-roundtrip", tmp_path / "up", chunk_bytes=4096)
    src = folder(tmp_path / "a", {"config.json": b"{}", "sub/w.bin": bytes(range(256)) * 100, "tok.json": b"tok"})
    artifact = await up.put_folder(src)
    assert artifact.in_store and {f.path for f in artifact.files} == {"config.json", "sub/w.bin", "tok.json"}
    assert artifact.bytes == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    assert await count_objects(store, "t-roundtrip") == 3
    other = folder(tmp_path / "b", {"config.json": b"{}", "tok.json": b"tok", "x.bin": b"new"})
    await up.put_folder(other)
    assert await count_objects(store, "t-roundtrip") == 4  # only the new file was added

    down = ArtifactStore(store.js, "t-roundtrip", tmp_path / "down")
    got = await down.get_folder(artifact)
    assert (got / "sub" / "w.bin").read_bytes() == bytes(range(256)) * 100
    assert got == tmp_path / "down" / artifact.sha256
    # a second get comes from the cache: it works with the store gone
    await (await store.js.object_store("t-roundtrip")).delete(artifact.files[0].sha256)
    assert await down.get_folder(artifact) == got


async def test_concurrent_gets_of_one_artifact_are_safe(store: EventStore, tmp_path: Path) -> None:
    up = ArtifactStore(store.js, "t-concurrent", tmp_path / "up")
    artifact = await up.put_folder(folder(tmp_path / "a", {"w.bin": b"x" * 300_000, "c.json": b"{}"}))
    down = ArtifactStore(store.js, "t-concurrent", tmp_path / "down")
    results = await asyncio.gather(*(down.get_folder(artifact) for _ in range(4)))
    assert len(set(results)) == 1 and (results[0] / "w.bin").stat().st_size == 300_000
    assert [p.name for p in (tmp_path / "down").iterdir() if p.name.startswith(".") and p.is_dir()] == []


async def test_forged_missing_and_traversing_artifacts_are_refused_and_nothing_is_cached(
    store: EventStore, tmp_path: Path
) -> None:
    up = ArtifactStore(store.js, "t-bad", tmp_path / "up")
    artifact = await up.put_folder(folder(tmp_path / "a", {"w.bin": b"honest", "c.json": b"{}"}))
    obs = await store.js.object_store("t-bad")
    await obs.put(next(f.sha256 for f in artifact.files if f.path == "w.bin"), b"forged")
    down = ArtifactStore(store.js, "t-bad", tmp_path / "down")
    with pytest.raises(ArtifactMismatch):
        await down.get_folder(artifact)
    missing = Artifact.from_files([ArtifactFile(path="w.bin", bytes=1, sha256="5" * 64)], "t-bad")
    with pytest.raises(ArtifactMissing):
        await down.get_folder(missing)
    with pytest.raises(ArtifactMissing, match="before artifacts travelled"):
        await down.get_folder(Artifact(sha256="6" * 64, bucket="", bytes=3))
    with pytest.raises(ValueError, match=r"'\.\.'"):
        ArtifactFile(path="../../etc/passwd", bytes=1, sha256="7" * 64)
    leftovers = [p for p in (tmp_path / "down").rglob("*") if p.is_file() and p.suffix != ".lock"]
    assert leftovers == []


async def test_links_are_refused_on_upload(store: EventStore, tmp_path: Path) -> None:
    src = folder(tmp_path / "a", {"w.bin": b"x"})
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(Exception, match="link"):
        await ArtifactStore(store.js, "t-links", tmp_path / "up").put_folder(src)


async def test_gc_removes_only_what_no_artifact_names(store: EventStore, tmp_path: Path) -> None:
    up = ArtifactStore(store.js, "t-gc", tmp_path / "up")
    keep = await up.put_folder(folder(tmp_path / "a", {"w.bin": b"keep", "c.json": b"{}"}))
    await up.put_folder(folder(tmp_path / "b", {"w.bin": b"drop", "c.json": b"{}"}))
    report = await up.delete_unreferenced({f.sha256 for f in keep.files}, dry_run=True)
    assert (report.kept, report.removed) == (2, 1) and await count_objects(store, "t-gc") == 3
    report = await up.delete_unreferenced({f.sha256 for f in keep.files})
    assert report.removed == 1 and await count_objects(store, "t-gc") == 2
    assert await up.has(keep)
