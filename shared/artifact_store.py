"""Artifacts travel over NATS: a JetStream object store, content-addressed, with a verified local cache.

Each file of an artifact folder is one object named by the sha256 of its bytes, so identical files
(tokenizers, a base model several experiments share) are stored once; the folder itself is the
manifest the event carries (`events.artifacts.Artifact`). A step uploads its output before it appends
its completion event; any agent on any machine downloads its input into a cache keyed by the
manifest hash and checks every file against the manifest before anything loads it. A forged or
corrupted object fails that check (`ArtifactMismatch`) and nothing is left in the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError

from greenai.events.artifacts import Artifact, ArtifactFile, check_relative_path
from greenai.shared.model_io import file_lock

FETCH_BATCH = 16  # chunks per pull request: 16 MiB in flight at the default chunk size
FREE_MARGIN = 16 << 20  # left free beyond an artifact's bytes when the cache makes room
COMPLETE = ".complete"  # a sibling marker written once a cached folder is whole and verified


class ArtifactError(Exception):
    """An artifact could not be stored or fetched; the message says which and why."""


class ArtifactMissing(ArtifactError):
    """The store does not have (all of) it, or the record predates the store."""


class ArtifactMismatch(ArtifactError):
    """Bytes that do not match the manifest: refused, nothing loaded."""


class CacheFull(OSError):
    """The cache's disk cannot hold the artifact even after evicting older entries.

    An `OSError` on purpose: space can come back (another job ends, an operator frees it), so the job
    is retried with backoff rather than failed for good.
    """


@dataclass(frozen=True)
class GcReport:
    kept: int
    removed: int
    removed_bytes: int


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe(folder: Path) -> list[ArtifactFile]:
    """The manifest of a folder; symlinks and special files are refused (they would not travel as bytes)."""
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise ArtifactError(f"{path} is a link or a special file: an artifact holds plain files only")
        if path.is_file():
            rel = check_relative_path(path.relative_to(folder).as_posix())
            files.append(ArtifactFile(path=rel, bytes=path.stat().st_size, sha256=file_sha256(path)))
    if not files:
        raise ArtifactError(f"{folder} holds no files")
    return files


class ArtifactStore:
    def __init__(
        self,
        js: JetStreamContext,
        bucket: str,
        cache_dir: Path,
        *,
        replicas: int = 1,
        chunk_bytes: int = 1 << 20,
        free_margin: int = FREE_MARGIN,
    ) -> None:
        self.js = js
        self.bucket = bucket
        self.cache_dir = cache_dir
        self.replicas = replicas
        self.chunk_bytes = chunk_bytes
        self.free_margin = free_margin
        self._obs: object | None = None

    async def ensure_bucket(self) -> None:
        """Bind to the bucket, creating it where this identity may (admin); others wait for it."""
        try:
            self._obs = await self.js.object_store(self.bucket)
            return
        except BucketNotFoundError:
            pass
        try:
            self._obs = await self.js.create_object_store(
                self.bucket, config=api.ObjectStoreConfig(bucket=self.bucket, replicas=self.replicas)
            )
        except Exception as exc:
            raise ArtifactError(f"the artifact bucket {self.bucket} is missing and cannot be created: {exc}") from exc

    async def _store(self) -> object:
        if self._obs is None:
            await self.ensure_bucket()
        assert self._obs is not None
        return self._obs

    async def _exists(self, name: str) -> bool:
        obs = await self._store()
        try:
            info = await obs.get_info(name)  # type: ignore[attr-defined]
        except (ObjectNotFoundError, NotFoundError):
            return False
        return not info.deleted

    async def put_folder(self, folder: Path) -> Artifact:
        """Upload every file the store lacks; return the manifest for the completion event."""
        files = await asyncio.to_thread(describe, folder)
        obs = await self._store()
        for f in files:
            if await self._exists(f.sha256):
                continue
            meta = api.ObjectMeta(name=f.sha256, options=api.ObjectMetaOptions(max_chunk_size=self.chunk_bytes))
            with open(folder / f.path, "rb") as handle:
                await obs.put(f.sha256, handle, meta=meta)  # type: ignore[attr-defined]
        return Artifact.from_files(files, self.bucket)

    async def has(self, artifact: Artifact) -> bool:
        return artifact.in_store and all([await self._exists(f.sha256) for f in artifact.files])

    def cached(self, artifact: Artifact) -> Path | None:
        folder = self.cache_dir / artifact.sha256
        marker = self.cache_dir / f"{artifact.sha256}{COMPLETE}"
        if not (marker.is_file() and folder.is_dir()):
            return None
        with contextlib.suppress(OSError):
            marker.touch()  # least recently used goes first when the disk fills
        return folder

    def make_room(self, need: int, keep: str) -> int:
        """Evict least recently used cached artifacts until `need` bytes (and a margin) are free.

        Returns how many were evicted; raises `CacheFull` when even an empty cache would not do.
        The marker goes before the folder, so no reader ever takes a half-removed entry for whole.
        """
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        want = need + self.free_margin
        free = shutil.disk_usage(self.cache_dir).free
        evicted = 0
        markers = sorted(self.cache_dir.glob(f"*{COMPLETE}"), key=lambda m: m.stat().st_mtime)
        for marker in markers:
            if free >= want:
                break
            sha = marker.name.removesuffix(COMPLETE)
            if sha == keep:
                continue
            marker.unlink(missing_ok=True)
            shutil.rmtree(self.cache_dir / sha, ignore_errors=True)
            evicted += 1
            free = shutil.disk_usage(self.cache_dir).free
        if free < want:
            raise CacheFull(
                errno.ENOSPC,
                f"artifact cache {self.cache_dir} is full: {need / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free "
                f"after evicting {evicted} cached artifact(s)",
            )
        return evicted

    async def adopt(self, folder: Path, artifact: Artifact) -> Path:
        """Move a folder this agent just uploaded into the cache, so its next local step need not fetch it."""
        target = self.cache_dir / artifact.sha256
        with file_lock(self.cache_dir / f".{artifact.sha256}.lock"):
            if self.cached(artifact) is None:
                shutil.rmtree(target, ignore_errors=True)
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                os.replace(folder, target)
                (self.cache_dir / f"{artifact.sha256}{COMPLETE}").touch()
            else:
                shutil.rmtree(folder, ignore_errors=True)
        return target

    async def get_folder(self, artifact: Artifact) -> Path:
        """`<cache>/<sha256>`: whole and verified against the manifest, fetched when not cached."""
        if not artifact.in_store:
            raise ArtifactMissing(
                f"artifact {artifact.sha256[:12]} was recorded before artifacts travelled over NATS: no store has it"
            )
        hit = self.cached(artifact)
        if hit is not None:
            return hit
        lock = self.cache_dir / f".{artifact.sha256}.lock"
        await asyncio.to_thread(lock.parent.mkdir, parents=True, exist_ok=True)
        handle = await asyncio.to_thread(open, lock, "a+")
        try:
            await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
            hit = self.cached(artifact)
            if hit is not None:
                return hit
            await asyncio.to_thread(self.make_room, artifact.bytes, artifact.sha256)
            tmp = Path(tempfile.mkdtemp(prefix=f".{artifact.sha256[:12]}.", dir=self.cache_dir))
            try:
                for f in artifact.files:
                    try:
                        await self._fetch_file(f, tmp)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        raise CacheFull(
                            errno.ENOSPC, f"artifact cache {self.cache_dir}: the disk filled while writing {f.path}"
                        ) from exc
                target = self.cache_dir / artifact.sha256
                shutil.rmtree(target, ignore_errors=True)
                os.replace(tmp, target)
                (self.cache_dir / f"{artifact.sha256}{COMPLETE}").touch()
                return target
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    async def _fetch_file(self, f: ArtifactFile, root: Path) -> None:
        dest = (root / check_relative_path(f.path)).resolve()
        if not dest.is_relative_to(root.resolve()):
            raise ArtifactMismatch(f"manifest path {f.path!r} leaves the artifact folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        obs = await self._store()
        try:
            info = await obs.get_info(f.sha256)  # type: ignore[attr-defined]
        except (ObjectNotFoundError, NotFoundError) as exc:
            raise ArtifactMissing(f"file {f.path} ({f.sha256[:12]}) is not in bucket {self.bucket}") from exc
        if info.deleted or info.size != f.bytes:
            raise ArtifactMismatch(f"file {f.path}: the store holds {info.size} bytes, the manifest says {f.bytes}")
        digest = hashlib.sha256()
        with open(dest, "wb") as handle:
            if f.bytes:
                await self._pull_chunks(info.nuid, f.bytes, handle, digest)
        if digest.hexdigest() != f.sha256:
            raise ArtifactMismatch(
                f"file {f.path}: sha256 {digest.hexdigest()[:12]}; the manifest says {f.sha256[:12]}"
            )

    async def _pull_chunks(self, nuid: str, size: int, handle: BinaryIO, digest: Any) -> None:
        """Batched pull of an object's chunks, hashed and written off the loop as they come.

        nats-py's `get` uses an ordered push consumer and one executor hop per chunk (~55 MB/s on
        loopback); batches of `FETCH_BATCH` chunks double that, and memory stays bounded by one batch.
        """
        subject = f"$O.{self.bucket}.C.{nuid}"
        config = api.ConsumerConfig(
            name=f"get-{uuid.uuid4().hex}", deliver_policy=api.DeliverPolicy.ALL, ack_policy=api.AckPolicy.NONE,
            filter_subject=subject, inactive_threshold=30.0, mem_storage=True, num_replicas=1,
        )  # fmt: skip
        sub = await self.js.pull_subscribe(subject, stream=f"OBJ_{self.bucket}", config=config)
        got = 0

        def consume(chunks: list[bytes]) -> None:
            for data in chunks:
                digest.update(data)
                handle.write(data)

        try:
            while got < size:
                msgs = await sub.fetch(FETCH_BATCH, timeout=30)
                chunks = [m.data for m in msgs]
                got += sum(len(c) for c in chunks)
                if got > size:
                    raise ArtifactMismatch(f"object {nuid}: more than the {size} bytes its record says")
                await asyncio.to_thread(consume, chunks)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def delete_unreferenced(self, referenced: set[str], *, dry_run: bool = False) -> GcReport:
        """Remove objects (file contents) no recorded artifact names; `referenced` holds file sha256s."""
        obs = await self._store()
        kept = removed = removed_bytes = 0
        try:
            infos = await obs.list()  # type: ignore[attr-defined]
        except NotFoundError:
            infos = []
        for info in infos:
            if info.deleted:
                continue
            if info.name in referenced:
                kept += 1
                continue
            removed += 1
            removed_bytes += info.size or 0
            if not dry_run:
                await obs.delete(info.name)  # type: ignore[attr-defined]
        return GcReport(kept, removed, removed_bytes)
