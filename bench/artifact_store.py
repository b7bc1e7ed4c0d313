"""Artifact store throughput: put and get of model folders through a loopback nats-server, against `cp -r`.

Each repetition puts the folder into a fresh bucket (nothing deduplicated) and gets it into an empty
cache (every file fetched and verified); `cp -r` of the same folder on the same disk is the limit.
The client's peak RSS growth during a get is sampled every 10 ms. Figures are printed and written
into bench/RESULTS.md; they depend on the machine and what else runs on it.

    python bench/artifact_store.py [--reps 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil

from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import start_nats_server

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "RESULTS.md"


class PeakRss:
    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return (self.peak - self.base) / 2**20


def smollm2_folder() -> Path:
    from greenai.shared.model_io import materialize, resolve_model

    return materialize(resolve_model("smollm2-135m"), REPO / "build" / "test-cache" / "models")


def partial_folder(source: Path, target: Path, size: int) -> Path:
    """A ~`size`-byte folder: the model's small files and the first `size` bytes of its weights."""
    if target.exists():
        return target
    target.mkdir(parents=True)
    for p in source.iterdir():
        if p.is_file() and p.suffix != ".safetensors":
            shutil.copy2(p, target / p.name)
    with open(source / "model.safetensors", "rb") as src, open(target / "weights.bin", "wb") as dst:
        dst.write(src.read(size))
    return target


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


async def measure(url: str, folder: Path, reps: int, work: Path) -> dict[str, list[float]]:
    store = await EventStore.connect(url, "BENCH")
    out: dict[str, list[float]] = {"put": [], "get": [], "cp": [], "rss": []}
    size = folder_size(folder)
    try:
        for rep in range(reps):
            bucket = f"bench-{folder.name[:20]}-{rep}-{int(time.time())}".replace(".", "-")
            up = ArtifactStore(store.js, bucket, work / f"up-{rep}")
            start = time.perf_counter()
            artifact = await up.put_folder(folder)
            out["put"].append(size / (time.perf_counter() - start) / 1e6)
            down = ArtifactStore(store.js, bucket, work / f"down-{rep}")
            rss = PeakRss()
            start = time.perf_counter()
            got = await down.get_folder(artifact)
            subprocess.run(["sync"], check=True)  # as for cp: the bytes are on disk, not only in the page cache
            out["get"].append(size / (time.perf_counter() - start) / 1e6)
            out["rss"].append(rss.stop())
            shutil.rmtree(got)
            target = work / f"cp-{rep}"
            start = time.perf_counter()
            subprocess.run(["cp", "-r", str(folder), str(target)], check=True)
            subprocess.run(["sync"], check=True)
            out["cp"].append(size / (time.perf_counter() - start) / 1e6)
            shutil.rmtree(target)
            await store.js.delete_object_store(bucket)
    finally:
        await store.close()
    return out


def spread(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:.0f} ({min(values):.0f}–{max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a 4 MB folder, one repetition; no RESULTS update")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="greenai-artifact-bench-") as tmp:
        root = Path(tmp)
        server = start_nats_server(root / "nats", publish_endpoint=False)
        try:
            if args.smoke:
                smoke = root / "smoke"
                smoke.mkdir()
                (smoke / "config.json").write_text("{}")
                (smoke / "weights.bin").write_bytes(bytes(range(256)) * (4 * 2**12))
                folders = {"smoke (1 MB)": smoke}
                reps = 1
            else:
                base = smollm2_folder()
                folders = {
                    "SmolLM2-135M float32": base,
                    "~166 MB (4-bit-sized)": partial_folder(base, root / "partial", 166 * 2**20),
                }
                reps = args.reps
            rows = []
            for label, folder in folders.items():
                r = asyncio.run(measure(server.url, folder, reps, root / "work"))
                put, get, cp = statistics.median(r["put"]), statistics.median(r["get"]), statistics.median(r["cp"])
                rows.append(
                    f"| {label} | {folder_size(folder) / 1e6:.0f} | {spread(r['put'])} | {spread(r['get'])} | "
                    f"{spread(r['cp'])} | {put / cp:.0%} | {get / cp:.0%} | {max(r['rss']):.0f} |"
                )
                print(rows[-1], flush=True)
        finally:
            server.stop()
    table = "\n".join([
        "## Artifact store (JetStream object store)",
        "",
        f"`bench/artifact_store.py`, loopback nats-server 2.15, nats-py object store, 1 MiB chunks, batched pull of 16 chunks per request, {reps} repetitions "
        "(median, min–max); each get verifies every file's sha256 and is followed by `sync`, as is `cp -r` of the same folder on the same disk.",
        "",
        "| folder | MB | put MB/s | get MB/s | cp MB/s | put / cp | get / cp | get: peak RSS growth MB |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])  # fmt: skip
    print(table)
    if not args.smoke:
        text = RESULTS.read_text(encoding="utf-8")
        heading = "## Artifact store (JetStream object store)"
        if heading in text:
            start = text.index(heading)
            nxt = text.find("\n## ", start + len(heading))
            text = text[:start] + table + "\n" + (text[nxt:] if nxt >= 0 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + table + "\n"
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
