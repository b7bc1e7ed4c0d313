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
from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.auth import client_options, init_auth
from greenai.shared.eventstore import EventStore
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
    fault: str  # "kill:<agent>", "server", "leader", "stop-node"
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
]


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
    names = ("coordinator", "quantization", "pruning", "lora", "evaluation")
    procs = {n: agent(n, url, root, auth.folder, data_dir, str(replicas)) for n in names}
    exp = "faults"
    run = RunRequested(model=str(tiny_model()), dataset="arc_easy", episodes=1, limit=4, policy="plan", plan=[s.steps])
    row: dict[str, object] = {"scenario": s.name}
    try:
        await admin.append(new_event(exp, run, producer="bench", key="run"))
        started = await wait(
            admin,
            exp,
            lambda ev: any(e.type == "job.started" and e.data.kind == s.kind for e in ev),
            timeout,  # type: ignore[attr-defined]
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
            cluster.node(leader).kill()
        elif s.fault == "stop-node":
            assert cluster is not None
            node = cluster.nodes[-1]
            node.pause()
            await asyncio.sleep(30)
            node.resume()
        n_before = len(started)
        progressed = await wait(admin, exp, lambda ev: len(ev) > n_before, timeout)
        recover_s = time.monotonic() - fault_at if len(progressed) > n_before else None
        events = await wait(admin, exp, lambda ev: any(e.type in DONE for e in ev), timeout)
        ids = {e.event_id for e in events}
        completions = Counter(
            e.data.job_id
            for e in events
            if e.type.endswith(".completed") and hasattr(e.data, "job_id")  # type: ignore[attr-defined]
        )
        starts = [e for e in events if e.type == "job.started"]
        done_jobs = {e.data.job_id for e in events if e.type.endswith(".completed") and hasattr(e.data, "job_id")}  # type: ignore[attr-defined]
        wasted = 0.0
        for e in starts:
            later = [x for x in starts if x.data.job_id == e.data.job_id and x.data.attempt > e.data.attempt]  # type: ignore[attr-defined]
            if later and e.data.job_id in done_jobs:  # type: ignore[attr-defined]
                wasted += (later[0].time - e.time).total_seconds()
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
        shutil.rmtree(root, ignore_errors=True)
    return row


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
    lines = [
        "## Faults (bench/faults.py)",
        "",
        "Tiny random Llama, one quantize (or prune, LoRA) episode per scenario, ARC-Easy 4 items; every agent its own "
        "process, work dir and NATS identity; artifacts through the object store; ack_wait 6 s.",
        "",
        "| scenario | recovered | s to progress after the fault | events lost | duplicate completions | compute wasted (s) |",
        "|---|---|---|---|---|---|",
        *[f"| {r['scenario']} | {'yes' if r.get('recovered') else '**no**'} | {r.get('recover_s')} | {r.get('lost')} | "
          f"{r.get('duplicates')} | {r.get('wasted_s')} |" for r in rows],
    ]  # fmt: skip
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.smoke and not args.only:
        text = RESULTS.read_text(encoding="utf-8")
        heading = "## Faults (bench/faults.py)"
        if heading in text:
            start = text.index(heading)
            nxt = text.find("\n## ", start + len(heading))
            text = text[:start] + table + (text[nxt:] if nxt >= 0 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + table
        RESULTS.write_text(text, encoding="utf-8")
    return 0 if all(r.get("recovered") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
