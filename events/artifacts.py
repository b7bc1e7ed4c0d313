"""Artifacts as the log records them: a folder in the JetStream object store, named by its content.

An event never holds a host path. It holds the hash of the folder's manifest (every file's relative
path, size and sha256), the bucket, and the manifest itself, so any machine that can reach NATS can
fetch the folder and check every byte of it against the log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
MAX_FILES = 10_000


def check_relative_path(path: str) -> str:
    """A path inside an artifact folder: relative, no '..', '.', empty parts, backslashes or control characters."""
    if not path or len(path) > 512:
        raise ValueError("a file path must be 1-512 characters")
    if path.startswith("/") or "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise ValueError(f"file path {path!r} must be relative, with '/' separators and no control characters")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"file path {path!r} has an empty, '.' or '..' part")
    return path


class ArtifactFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    bytes: int = Field(ge=0)
    sha256: Sha256

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return check_relative_path(value)


def manifest_sha256(files: Sequence[ArtifactFile]) -> str:
    """The artifact's name: sha256 of its manifest in a canonical form (sorted by path)."""
    rows = sorted([f.path, f.bytes, f.sha256] for f in files)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


class Artifact(BaseModel):
    """A folder in the object store. `files` empty means a record from before artifacts travelled
    over NATS (upcast from a host path): the log knows its hash and size, the store does not have it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: Sha256
    bucket: str = Field(pattern=r"^[A-Za-z0-9_-]{0,64}$")
    bytes: int = Field(ge=0)
    files: list[ArtifactFile] = Field(default_factory=list, max_length=MAX_FILES)

    @model_validator(mode="after")
    def _consistent(self) -> Artifact:
        if not self.files:
            return self
        if len({f.path for f in self.files}) != len(self.files):
            raise ValueError("an artifact lists a file path twice")
        if sum(f.bytes for f in self.files) != self.bytes:
            raise ValueError("an artifact's bytes must be the sum of its files' bytes")
        if manifest_sha256(self.files) != self.sha256:
            raise ValueError("an artifact's sha256 must be the hash of its manifest")
        return self

    @property
    def in_store(self) -> bool:
        return bool(self.files)

    @classmethod
    def from_files(cls, files: Sequence[ArtifactFile], bucket: str) -> Artifact:
        return cls(
            sha256=manifest_sha256(files),
            bucket=bucket,
            bytes=sum(f.bytes for f in files),
            files=sorted(files, key=lambda f: f.path),
        )


class ArtifactV1(BaseModel):
    """Version 1: a host path, its size and a folder hash. Read as an `Artifact` without the path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    bytes: int = Field(ge=0)
    sha256: str

    def upcast(self) -> Artifact:
        return Artifact(sha256=self.sha256, bucket="", bytes=self.bytes)
