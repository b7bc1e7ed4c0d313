"""Local inputs a user names at the CLI, put where the agents may read them.

A run request on the bus may only name an alias, a Hub id, or a model under the models dir (and a user
benchmark under the data or work dir): agents refuse any other path. So when a user points `greenai run`
at a folder of their own, the CLI copies it once into the work dir, under a name derived from its
content, and the request names that copy.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from greenai.shared.config import Settings
from greenai.shared.model_io import ALIASES, HUB_ID, folder_sha256


def _inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(r.resolve()) for r in roots)


def _copy(source: Path, target: Path) -> Path:
    if target.exists():
        return target
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, tmp, symlinks=False)
    else:
        tmp.mkdir()
        shutil.copy2(source, tmp / source.name)
    tmp.rename(target)
    return target


def _digest(path: Path) -> str:
    if path.is_dir():
        return folder_sha256(path)[:12]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def _slug(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem if path.is_file() else path.name).strip("-")[:40] or "x"


def stage_model(reference: str, settings: Settings) -> str:
    """The reference to send: unchanged for an alias, a Hub id or a model already under an allowed root;
    otherwise the path of a copy under the models dir."""
    if reference.lower() in ALIASES:
        return reference
    path = Path(reference).expanduser()
    if not path.exists():
        if HUB_ID.match(reference):
            return reference
        return reference  # the coordinator refuses it with the reason
    if _inside(path, settings.allowed_model_roots):
        return str(path.resolve())
    target = settings.models_dir / f"local-{_slug(path)}-{_digest(path)}"
    staged = _copy(path, target)
    return str(staged / path.name) if path.is_file() else str(staged)


def stage_benchmark(name: str, settings: Settings) -> str:
    """A user benchmark (a .jsonl with its description, or a task folder) copied under the work dir."""
    path = Path(name).expanduser()
    if not path.exists():
        return name
    roots = [r for r in (settings.data_dir, settings.work_dir) if r is not None]
    if _inside(path, roots):
        return str(path.resolve())
    if path.is_dir():
        return str(_copy(path, settings.work_dir / "benchmarks" / f"{_slug(path)}-{_digest(path)}"))
    folder = settings.work_dir / "benchmarks" / f"{_slug(path)}-{_digest(path)}"
    if not folder.exists():
        tmp = folder.with_name(f".{folder.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for sibling in [path, *(path.with_suffix(s) for s in (".yaml", ".yml", ".json"))]:
            if sibling.is_file():
                shutil.copy2(sibling, tmp / sibling.name)
        tmp.rename(folder)
    return str(folder / path.name)
