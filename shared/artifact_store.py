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
import fcntl
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, DigestMismatchError, NotFoundError, ObjectNotFoundError

from greenai.events.artifacts import Artifact, ArtifactFile, check_relative_path
from greenai.shared.model_io import file_lock

COMPLETE = ".complete"  # a sibling marker written once a cached folder is whole and verified


class ArtifactError(Exception):
    """An artifact could not be stored or fetched; the message says which and why."""


class ArtifactMissing(ArtifactError):
    """The store does not have (all of) it, or the record predates the store."""


class ArtifactMismatch(ArtifactError):
    """Bytes that do not match the manifest: refused, nothing loaded."""


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
        self, js: JetStreamContext, bucket: str, cache_dir: Path, *, replicas: int = 1, chunk_bytes: int = 1 << 20
    ) -> None:
        self.js = js
        self.bucket = bucket
        self.cache_dir = cache_dir
        self.replicas = replicas
        self.chunk_bytes = chunk_bytes
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
        return folder if (self.cache_dir / f"{artifact.sha256}{COMPLETE}").is_file() and folder.is_dir() else None

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
            tmp = Path(tempfile.mkdtemp(prefix=f".{artifact.sha256[:12]}.", dir=self.cache_dir))
            try:
                for f in artifact.files:
                    await self._fetch_file(f, tmp)
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
            with open(dest, "wb") as handle:
                await obs.get(f.sha256, writeinto=handle)  # type: ignore[attr-defined]
        except (ObjectNotFoundError, NotFoundError) as exc:
            raise ArtifactMissing(f"file {f.path} ({f.sha256[:12]}) is not in bucket {self.bucket}") from exc
        except DigestMismatchError as exc:  # the stored chunks do not hash to the stored digest
            raise ArtifactMismatch(f"file {f.path}: its chunks do not match their recorded digest") from exc
        size = dest.stat().st_size
        digest = await asyncio.to_thread(file_sha256, dest)
        if size != f.bytes or digest != f.sha256:
            raise ArtifactMismatch(
                f"file {f.path}: {size} bytes, sha256 {digest[:12]}; the manifest says {f.bytes} and {f.sha256[:12]}"
            )

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
