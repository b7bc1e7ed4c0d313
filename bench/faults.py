"""Faults against real processes: one short experiment per scenario on the tiny model, one fault each.

Every agent is its own process with its own work dir and NATS identity; artifacts travel through the
object store. A scenario waits until the job it targets has started, injects the fault, and follows
the experiment to its end. Figures per row: recovered (the experiment completed), seconds from the
fault to the next progress of the affected work, events lost (seen before the fault, missing after),
duplicate completions (a job completed twice), compute wasted (s of attempts that did not complete).

    python bench/faults.py [--smoke] [--only NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from greenai.cli.agents import stop_all
from greenai.events import Envelope, new_event
from greenai.events.experiment import RunRequested, Step
from greenai.events.jobs import JobStarted
from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.auth import client_options, init_auth
from greenai.shared.eventstore import EventStore
from greenai.shared.host_lease import ensure_hosts_bucket
from greenai.shared.nats_cluster import LocalCluster
from greenai.shared.nats_server import start_nats_server

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "RESULTS.md"
DONE = ("experiment.completed", "experiment.failed")


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: list[Step]
    kind: str  # the job kind whose start triggers the fault
    fault: str  # "kill:<agent>", "server", "leader", "stop-node", "disk-full"
    cluster: bool = False


QUANT = [Step(kind="quantize", method="bnb_int8")]
SCENARIOS = [
    Scenario("SIGKILL quantization agent mid-job", QUANT, "quantize", "kill:quantization"),
    Scenario(
        "SIGKILL pruning agent mid-job",
        [Step(kind="prune", method="wanda", params={"sparsity": 0.5})],
        "prune",
        "kill:pruning",
    ),
    Scenario(
        "SIGKILL LoRA agent mid-job",
        [Step(kind="lora", method="lora", params={"steps": 6, "batch_size": 2, "seq_len": 32})],
        "lora",
        "kill:lora",
    ),
    Scenario("SIGKILL evaluation agent mid-job", QUANT, "evaluate", "kill:evaluation"),
    Scenario("SIGKILL coordinator mid-run", QUANT, "quantize", "kill:coordinator"),
    Scenario("SIGKILL + restart of the nats-server mid-job", QUANT, "quantize", "server"),
    Scenario("SIGKILL of the stream leader (3-node cluster)", QUANT, "quantize", "leader", cluster=True),
    Scenario("one node SIGSTOPped for 30 s (3-node cluster)", QUANT, "quantize", "stop-node", cluster=True),
    Scenario("evaluation agent's artifact cache disk full, freed after the failure", QUANT, "evaluate", "disk-full"),
]
DISK_MB = 96  # the evaluation agent's cache disk in the disk-full scenario (a tmpfs; needs root)


def mount_small_disk(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(path)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def fill(path: Path, leave_mb: int) -> Path:
    """A ballast file that leaves `leave_mb` free: the disk is full for anything bigger."""
    ballast = path / "ballast"
    free = shutil.disk_usage(path).free - leave_mb * 2**20
    with open(ballast, "wb") as handle:
        handle.truncate(0)
        for _ in range(free // 2**20):
            handle.write(b"\0" * 2**20)
    return ballast


def tiny_model() -> Path:
    path = REPO / "build" / "test-cache" / "tiny-llama"
    if not (path / "config.json").is_file():
        raise SystemExit(f"{path} missing: run the test suite once (it builds the tiny model)")
    return path


def agent(name: str, url: str, root: Path, auth: Path, data_dir: Path, replicas: str = "1") -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env.update(
        GREENAI_NATS_URL=url, GREENAI_WORK_DIR=str(root / "work" / name), GREENAI_DATA_DIR=str(data_dir),
        GREENAI_CREDENTIALS=str(auth / f"{name}.nk"), GREENAI_AUTH_DIR=str(auth / "none"), GREENAI_ACK_WAIT_S="6",
        GREENAI_REPLICAS=replicas,
        GREENAI_MODEL_ROOTS=json.dumps([str(tiny_model().parent)]), GREENAI_LOG_FORMAT="json",
        HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
    )  # fmt: skip
    log = open(root / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, "-m", "greenai", "agent", name], env=env, stdout=log, stderr=log)


async def wait(store: EventStore, exp: str, pred: Callable[[list[Envelope]], bool], timeout: float) -> list[Envelope]:
    deadline = time.monotonic() + timeout
    while True:
        events = (await store.read(exp)).envelopes
        if pred(events) or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.2)


async def run_scenario(s: Scenario, data_dir: Path, timeout: float) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="greenai-faults-"))
    auth = init_auth(root / "auth")
    cluster = LocalCluster(root / "cluster", 3, extra_config=auth.server_conf.read_text()) if s.cluster else None
    server = None if cluster else start_nats_server(root / "nats", publish_endpoint=False, auth_conf=auth.server_conf)
    if cluster is not None:
        cluster.start()
    url = cluster.url if cluster is not None else server.url  # type: ignore[union-attr]
    replicas = 3 if cluster else 1
    from greenai.shared.eventstore import StreamLimits

    admin = await EventStore.connect(
        url, "GREENAI_EVENTS", options=client_options(auth.seed("admin")), limits=StreamLimits(replicas=replicas)
    )
    await ArtifactStore(admin.js, "greenai-artifacts", root / "admin-cache", replicas=replicas).ensure_bucket()
    await ensure_hosts_bucket(admin.js, replicas)
    names = ("coordinator", "quantization", "pruning", "lora", "evaluation")
    disk = root / "work" / "evaluation"
    ballast = None
    if s.fault == "disk-full":
        if not mount_small_disk(disk):
            shutil.rmtree(root, ignore_errors=True)
            return {"scenario": s.name, "skipped": "needs root to mount a tmpfs"}
        ballast = fill(disk, 8)
    procs = {n: agent(n, url, root, auth.folder, data_dir, str(replicas)) for n in names}
    exp = "faults"
    run = RunRequested(model=str(tiny_model()), dataset="arc_easy", episodes=1, limit=4, policy="plan", plan=[s.steps])
    row: dict[str, object] = {"scenario": s.name}
    try:
        await admin.append(new_event(exp, run, producer="bench", key="run"))
        trigger = "job.failed" if s.fault == "disk-full" else "job.started"
        started = await wait(
            admin,
            exp,
            lambda ev: any(e.type == trigger and e.data.kind == s.kind for e in ev),  # type: ignore[attr-defined]
            timeout,
        )
        before = {e.event_id for e in started}
        fault_at = time.monotonic()
        if s.fault.startswith("kill:"):
            victim = s.fault.split(":")[1]
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            procs[victim] = agent(victim, url, root, auth.folder, data_dir, str(replicas))
        elif s.fault == "server":
            assert server is not None
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            await asyncio.sleep(8)
            server = start_nats_server(root / "nats", publish_endpoint=False, auth_conf=auth.server_conf,
                                       port=int(url.rsplit(":", 1)[1]))  # fmt: skip
        elif s.fault == "leader":
            assert cluster is not None
            leader = cluster.stream_leader("GREENAI_EVENTS")
            assert leader is not None, "the stream has no leader"
            row["node"] = leader
            cluster.node(leader).kill()
        elif s.fault == "disk-full":
            assert ballast is not None
            failure = next(e for e in started if e.type == "job.failed")
            row["failure"] = f"{failure.data.error_type}: {failure.data.message}"[:160]  # type: ignore[attr-defined]
            ballast.unlink()  # the operator frees the disk; the retry must find the space
        elif s.fault == "stop-node":
            assert cluster is not None
            leader = cluster.stream_leader("GREENAI_EVENTS")  # the harshest node to freeze
            assert leader is not None, "the stream has no leader"
            node = cluster.node(leader)
            node.pause()
            row["node"] = leader
            asyncio.get_running_loop().call_later(30, node.resume)  # progress is watched meanwhile
        n_before = len(started)
        progressed = await wait(admin, exp, lambda ev: len(ev) > n_before, timeout)
        recover_s = time.monotonic() - fault_at if len(progressed) > n_before else None
        if s.fault == "stop-node":
            await asyncio.sleep(max(0.0, fault_at + 31 - time.monotonic()))
        events = await wait(admin, exp, lambda ev: any(e.type in DONE for e in ev), timeout)
        ids = {e.event_id for e in events}
        completed = [getattr(e.data, "job_id", None) for e in events if e.type.endswith(".completed")]
        completions = Counter(j for j in completed if j is not None)
        starts = [(e.data.job_id, e.data.attempt, e.time) for e in events if isinstance(e.data, JobStarted)]
        wasted = 0.0
        for job, attempt, at in starts:
            later = [t for j, a, t in starts if j == job and a > attempt]
            if later and job in completions:
                wasted += (later[0] - at).total_seconds()
        row |= {
            "recovered": events[-1].type == "experiment.completed",
            "recover_s": round(recover_s, 1) if recover_s is not None else None,
            "lost": len(before - ids),
            "duplicates": sum(c - 1 for c in completions.values() if c > 1),
            "wasted_s": round(wasted, 1),
        }
    finally:
        stop_all(list(procs.values()), 20)
        await admin.close()
        if server is not None:
            server.stop()
        if cluster is not None:
            cluster.stop()
        if ballast is not None:
            subprocess.run(["umount", "-l", str(disk)], check=False)
        shutil.rmtree(root, ignore_errors=True)
    return row


HEADING = "## Faults (bench/faults.py)"
TABLE_HEAD = [
    "| scenario | recovered | s to progress after the fault | events lost | duplicate completions | compute wasted (s) |",
    "|---|---|---|---|---|---|",
]


def row_line(r: dict[str, object]) -> str:
    if "skipped" in r:
        return f"| {r['scenario']} | not run ({r['skipped']}) | | | | |"
    return (
        f"| {r['scenario']} | {'yes' if r.get('recovered') else '**no**'} | {r.get('recover_s')} | {r.get('lost')} | "
        f"{r.get('duplicates')} | {r.get('wasted_s')} |"
    )


def merge_rows(text: str, new_rows: dict[str, str], rows: list[dict[str, object]]) -> str:
    """Replace this run's rows in RESULTS' table (in scenario order), keep the others and the prose after it."""
    old: dict[str, str] = {}
    prose = ""
    if HEADING in text:
        start = text.index(HEADING)
        nxt = text.find("\n## ", start + len(HEADING))
        section = text[start : nxt if nxt >= 0 else len(text)]
        for line in section.splitlines():
            if line.startswith("| ") and not line.startswith(("| scenario", "|---")):
                old[line.split(" | ")[0][2:]] = line
        tail = section.split("\n\n")
        prose = "\n\n".join(p for p in tail[1:] if not p.lstrip().startswith(("|", "Tiny random")))
        text = text[:start] + "{TABLE}" + (text[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n{TABLE}"
    merged = {**old, **new_rows}
    order = [s.name for s in SCENARIOS]
    lines = [merged[n] for n in order if n in merged] + [v for k, v in merged.items() if k not in order]
    notes = [f"Disk-full failure as recorded by the job: `{r['failure']}`" for r in rows if "failure" in r]
    table = "\n".join([
        HEADING, "",
        "Tiny random Llama, one quantize (or prune, LoRA) episode per scenario, ARC-Easy 4 items; every agent its own "
        "process, work dir and NATS identity; artifacts through the object store; ack_wait 6 s. \"s to progress\" is "
        "the time from the fault to the next event of the experiment. Rows are replaced per scenario when it is re-run.",
        "", *TABLE_HEAD, *lines, "", *notes,
    ])  # fmt: skip
    prose = "\n\n".join(p for p in prose.split("\n\n") if not p.startswith("Disk-full failure"))
    return text.replace("{TABLE}", table.rstrip("\n") + "\n\n" + (prose.strip("\n") + "\n" if prose.strip() else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="one scenario (an agent killed); no RESULTS update")
    parser.add_argument("--only", help="run the scenarios whose name contains this")
    parser.add_argument("--data-dir", default=os.environ.get("GREENAI_DATA_DIR", str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    chosen = SCENARIOS[:1] if args.smoke else [s for s in SCENARIOS if not args.only or args.only in s.name]
    rows = []
    for s in chosen:
        print(f"… {s.name}", flush=True)
        row = asyncio.run(run_scenario(s, Path(args.data_dir), 420))
        rows.append(row)
        print(row, flush=True)
    new_rows = {str(r["scenario"]): row_line(r) for r in rows}
    print("\n".join(new_rows.values()))
    if not args.smoke:
        text = RESULTS.read_text(encoding="utf-8")
        RESULTS.write_text(merge_rows(text, new_rows, rows), encoding="utf-8")
    return 0 if all(r.get("recovered") or "skipped" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
