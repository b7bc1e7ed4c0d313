"""The artifact cache on a full disk: older entries are evicted first, a fetch that still cannot fit
fails with a retryable `CacheFull` and leaves nothing half-written, and it succeeds once space is back.

Uses a real tmpfs (root only); skipped where this process cannot mount one.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenai.shared.artifact_store import ArtifactStore, CacheFull
from greenai.shared.eventstore import EventStore
from greenai.shared.runtime import is_transient

MB = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", str(mount)]).returncode:
        pytest.skip("needs root to mount a 10 MB tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def model(root: Path, seed: int, size: int) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / "w.bin").write_bytes(bytes([seed]) * size)
    return root


def leftovers(cache: Path) -> list[str]:
    """Anything in the cache that is neither a whole entry, its marker nor a lock."""
    return [p.name for p in cache.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]


async def test_older_entries_are_evicted_to_make_room(store: EventStore, tmp_path: Path, small_disk: Path) -> None:
    up = ArtifactStore(store.js, "t-evict", tmp_path / "up")
    a = await up.put_folder(model(tmp_path / "a", 1, 5 * MB))
    b = await up.put_folder(model(tmp_path / "b", 2, 5 * MB))
    cache = ArtifactStore(store.js, "t-evict", small_disk / "cache", free_margin=MB // 2)
    await cache.get_folder(a)
    got = await cache.get_folder(b)
    assert (got / "w.bin").read_bytes() == bytes([2]) * 5 * MB
    assert cache.cached(a) is None and cache.cached(b) == got
    assert leftovers(small_disk / "cache") == []


async def test_a_full_disk_fails_retryably_leaves_nothing_and_recovers(
    store: EventStore, tmp_path: Path, small_disk: Path
) -> None:
    up = ArtifactStore(store.js, "t-full", tmp_path / "up")
    art = await up.put_folder(model(tmp_path / "a", 3, 4 * MB))
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * 7 * MB)  # not the cache's: eviction cannot help
    # a margin that lets the pre-check pass, so the disk fills in the middle of the write
    cache = ArtifactStore(store.js, "t-full", small_disk / "cache", free_margin=-8 * MB)
    with pytest.raises(CacheFull) as caught:
        await cache.get_folder(art)
    assert caught.value.errno == errno.ENOSPC and "filled while writing w.bin" in str(caught.value)
    assert is_transient(caught.value)
    assert cache.cached(art) is None and leftovers(small_disk / "cache") == []
    strict = ArtifactStore(store.js, "t-full", small_disk / "cache", free_margin=MB // 2)
    with pytest.raises(CacheFull, match="MB needed"):  # refused before a byte is written
        await strict.get_folder(art)
    ballast.unlink()
    got = await strict.get_folder(art)
    assert (got / "w.bin").stat().st_size == 4 * MB
