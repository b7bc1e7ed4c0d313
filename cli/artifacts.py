"""`greenai pull` and `greenai gc`: compressed models out of the object store, from the log alone."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from greenai.cli.options import console, settings_or_exit
from greenai.events.artifacts import Artifact
from greenai.events.results import ModelStaged, StepCompleted
from greenai.shared.artifact_store import ArtifactError, ArtifactStore
from greenai.shared.bus import ensure_nats, open_store


def episode_artifact(events: Sequence[object], episode: int) -> Artifact | None:
    """Episode 0: the staged base model; otherwise the episode's last step's output."""
    found: Artifact | None = None
    last_step = -1
    for env in events:
        data = getattr(env, "data", None)
        if episode == 0 and isinstance(data, ModelStaged):
            return data.artifact
        if isinstance(data, StepCompleted) and data.episode == episode and data.step > last_step:
            found, last_step = data.artifact, data.step
    return found


def pull(
    experiment: str,
    episode: Annotated[int, typer.Argument(help="The episode (0: the uncompressed base model).")],
    target: Annotated[Path, typer.Argument(help="An empty or new folder to write the model into.")],
    work_dir: Annotated[Path | None, typer.Option("--work-dir")] = None,
    nats_url: Annotated[str | None, typer.Option("--nats-url")] = None,
) -> None:
    """Fetch an episode's compressed model from the object store into DIR, checked against the log."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        console.print(f"[red]{target} exists and is not an empty folder[/red]")
        raise typer.Exit(2)
    settings = settings_or_exit(None, work_dir, nats_url)
    bus = ensure_nats(settings, start=False)

    async def go() -> int:
        store = await open_store(settings, bus.url, "pull", "viewer")
        try:
            history = await store.read(experiment)
            artifact = episode_artifact(history.envelopes, episode)
            if artifact is None:
                console.print(f"[red]experiment {experiment!r} has no artifact for episode {episode}[/red]")
                return 1
            s = settings
            artifacts = ArtifactStore(store.js, artifact.bucket or s.artifact_bucket, s.artifact_cache_dir)
            try:
                folder = await artifacts.get_folder(artifact)
            except ArtifactError as exc:
                console.print(f"[red]{exc}[/red]")
                return 1
            await asyncio.to_thread(shutil.copytree, folder, target, dirs_exist_ok=True)
            console.print(f"{artifact.bytes / 2**20:.1f} MiB, {len(artifact.files)} files, verified: {target}")
            return 0
        finally:
            await store.close()

    raise typer.Exit(asyncio.run(go()))


def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
    work_dir: Annotated[Path | None, typer.Option("--work-dir")] = None,
    nats_url: Annotated[str | None, typer.Option("--nats-url")] = None,
) -> None:
    """Remove stored files no artifact in the log refers to (runs as admin)."""
    settings = settings_or_exit(None, work_dir, nats_url)
    bus = ensure_nats(settings, start=False)

    async def go() -> int:
        store = await open_store(settings, bus.url, "gc", "admin")
        try:
            referenced: set[str] = set()
            async for stored in store.read_everything():
                for value in (getattr(stored.envelope.data, "artifact", None),):
                    if isinstance(value, Artifact):
                        referenced |= {f.sha256 for f in value.files}
                source = getattr(stored.envelope.data, "source", None) or getattr(stored.envelope.data, "target", None)
                if source is not None and getattr(source, "artifact", None) is not None:
                    referenced |= {f.sha256 for f in source.artifact.files}
            report = await ArtifactStore(
                store.js, settings.artifact_bucket, settings.artifact_cache_dir
            ).delete_unreferenced(referenced, dry_run=dry_run)
        finally:
            await store.close()
        verb = "would remove" if dry_run else "removed"
        console.print(f"kept {report.kept} objects; {verb} {report.removed} ({report.removed_bytes / 2**20:.1f} MiB)")
        return 0

    raise typer.Exit(asyncio.run(go()))
