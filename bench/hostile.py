"""Hostile-input suite: real agent processes, a real auth-on nats-server, hundreds of hostile inputs.

What it tries (bench/hostile_inputs.py builds the inputs from the event registry):
- schema-fuzzed events of every type, published by the role that may produce that type, so they
  reach the agent that consumes it; types nobody consumes, published by an outsider role;
- forged events: every type published by a role that may not publish it;
- path strings in every field that becomes a path (job ids, model references, datasets);
- malformed and malicious user benchmarks (bad JSONL/YAML, `!function`, includes, template injection);
- model-written code against the HumanEval sandbox (frame walk, setsid, /proc, writes, floods, fork bomb,
  sockets).

What it counts: inputs tried, agent crashes, inputs answered (a rejection or failure event in the log,
or the server refusing the publish), files written outside the work dirs, secrets found in any event,
sandbox attacks contained. Prints a table and writes it into bench/RESULTS.md.

    python bench/hostile.py [--seed 0] [--per-type 6] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from hostile_inputs import SANDBOX_ATTACKS, HostileInput, generate, path_inputs

from greenai.cli.agents import stop_all
from greenai.events.registry import event_types
from greenai.shared.auth import PRODUCES, AuthFiles, client_options, init_auth
from greenai.shared.eventstore import EventStore

AGENTS = ("coordinator", "quantization", "pruning", "lora", "evaluation")
CONSUMER = {
    "run.requested": "coordinator",
    "decision.reviewed": "coordinator",
    "quantize.completed": "coordinator",
    "prune.completed": "coordinator",
    "lora.completed": "coordinator",
    "evaluate.completed": "coordinator",
    "job.failed": "coordinator",
    "quantize.requested": "quantization",
    "prune.requested": "pruning",
    "lora.requested": "lora",
    "evaluate.requested": "evaluation",
}
ANSWERS = ("event.rejected", "job.failed", "experiment.failed")
CANARY = "sk-hostilecanary0123456789abcdefghijklmnop"
VICTIM = "/tmp/greenai-hostile-victim"
RESULTS = Path(__file__).parent / "RESULTS.md"


class Roles:
    """One connection per role, made on first use, each with that role's own seed."""

    def __init__(self, url: str, auth: AuthFiles) -> None:
        self.url, self.auth = url, auth
        self.connections: dict[str, nats.aio.client.Client] = {}

    async def get(self, role: str) -> nats.aio.client.Client:
        if role not in self.connections:

            async def quiet(exc: Exception) -> None:  # permission refusals are expected here
                return None

            self.connections[role] = await nats.connect(
                self.url, error_cb=quiet, **client_options(self.auth.seed(role))
            )
        return self.connections[role]

    async def close(self) -> None:
        for nc in self.connections.values():
            await nc.close()


@dataclass
class Tally:
    tried: int = 0
    answered_by_event: int = 0
    refused_by_server: int = 0
    unanswered: list[str] = field(default_factory=list)
    by_category: dict[str, list[int]] = field(default_factory=dict)

    def count(self, category: str, answered: bool) -> None:
        row = self.by_category.setdefault(category, [0, 0])
        row[0] += 1
        row[1] += int(answered)


def producers_of(type_: str) -> list[str]:
    return [role for role, types in PRODUCES.items() if type_ in types]


def outsider_for(type_: str) -> str:
    """A role that may not publish this type."""
    for role in ("viewer", "cli", "evaluation", "quantization", "coordinator"):
        if role in PRODUCES and type_ not in PRODUCES[role]:
            return role
    return "viewer"


async def publish(roles: Roles, role: str, item: HostileInput) -> bool:
    """True when the server stored the message; False when it refused it (permissions) or timed out."""
    nc = await roles.get(role)
    js = nc.jetstream()
    try:
        await js.publish(f"greenai.evt.{item.experiment}.{item.type}", item.body, timeout=2.0)
        return True
    except Exception:
        return False


async def answered(store: EventStore, experiment: str) -> bool:
    history = await store.read(experiment)
    return any(e.type in ANSWERS for e in history.envelopes)


async def run_bus_inputs(
    store: EventStore, roles: Roles, inputs: list[HostileInput], tally: Tally, wait_s: float
) -> None:
    pending: list[HostileInput] = []
    for item in inputs:
        tally.tried += 1
        consumer = CONSUMER.get(item.type)
        role = (producers_of(item.type) or ["coordinator"])[0] if consumer else outsider_for(item.type)
        stored = await publish(roles, role, item)
        if not stored and consumer is None:
            tally.refused_by_server += 1
            tally.count(item.category, True)
        elif stored and consumer is None:
            tally.unanswered.append(f"{item.category} {item.type} {item.description}: stored from outsider {role}")
            tally.count(item.category, False)
        elif not stored:
            tally.unanswered.append(f"{item.category} {item.type} {item.description}: not stored by its producer")
            tally.count(item.category, False)
        else:
            pending.append(item)
    deadline = time.monotonic() + wait_s
    while pending and time.monotonic() < deadline:
        still = []
        for item in pending:
            if await answered(store, item.experiment):
                tally.answered_by_event += 1
                tally.count(item.category, True)
            else:
                still.append(item)
        pending = still
        if pending:
            await asyncio.sleep(1.0)
    for item in pending:
        tally.unanswered.append(f"{item.category} {item.type} {item.description}: no answer in {wait_s:.0f} s")
        tally.count(item.category, False)


async def run_forged(store: EventStore, roles: Roles, tally: Tally, seed: int) -> None:
    """Every registered type, published by a role that may not publish it: the server must refuse."""
    forged = [i for i in generate(seed, 0, "forged") if i.description == "experiment differs from subject"]
    for item in forged:
        role = outsider_for(item.type)
        tally.tried += 1
        stored = await publish(roles, role, item)
        if stored:
            tally.unanswered.append(f"forged {item.type} from {role}: stored")
        else:
            tally.refused_by_server += 1
        tally.count("forged", not stored)


@dataclass
class SandboxRow:
    attack: str
    contained: bool
    detail: str


def _listener() -> tuple[socket.socket, list[bytes]]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.settimeout(0.2)
    got: list[bytes] = []

    def accept() -> None:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                conn, _ = srv.accept()
                got.append(conn.recv(100) or b"<connected>")
                conn.close()
            except (TimeoutError, OSError):
                continue

    threading.Thread(target=accept, daemon=True).start()
    return srv, got


def run_sandbox_attacks(outside: Path, tally: Tally, smoke: bool) -> list[SandboxRow]:
    from greenai.services.evaluation.sandbox import SandboxLimits, run_untrusted

    rows = []
    srv, got = _listener()
    limits = SandboxLimits(timeout_s=2.0 if smoke else 5.0)
    attacks = dict(list(SANDBOX_ATTACKS.items())[:3]) if smoke else SANDBOX_ATTACKS
    me = psutil.Process()
    for name, template in attacks.items():
        marker = str(900000 + len(rows))
        program = template.format(victim=VICTIM, outside=outside, port=srv.getsockname()[1], sleep_marker=marker)
        rss_before = me.memory_info().rss
        start = time.monotonic()
        try:
            result = run_untrusted(program, limits)
            reason, tail = result.reason, result.stderr_tail
        except Exception as exc:  # a refusal (no isolation) is contained too; say so
            reason, tail = f"refused: {exc}", ""
        wall = time.monotonic() - start
        time.sleep(0.3)
        problems = []
        leftovers = [p for p in Path("/tmp").glob(Path(VICTIM).name + "*")]
        if leftovers:
            problems.append(f"wrote {[str(p) for p in leftovers]}")
            for p in leftovers:
                p.unlink(missing_ok=True)
        if (outside / "planted").exists():
            problems.append("wrote into the work dir")
        if Path("/root/greenai-hostile-planted").exists():
            problems.append("wrote into home")
            Path("/root/greenai-hostile-planted").unlink()
        survivors = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]
        if survivors:
            problems.append(f"{len(survivors)} process(es) outlived it")
            for p in survivors:
                p.kill()
        if CANARY in tail:
            problems.append("read the canary secret")
        if got:
            problems.append(f"reached the host listener: {got[:1]}")
            got.clear()
        if wall > limits.timeout_s + 3:
            problems.append(f"ran {wall:.1f} s against a {limits.timeout_s} s limit")
        growth = (me.memory_info().rss - rss_before) / 2**20
        if growth > 100:
            problems.append(f"parent RSS grew by {growth:.0f} MB")
        tally.tried += 1
        tally.count("sandbox", not problems)
        if problems:
            tally.unanswered.append(f"sandbox {name}: {'; '.join(problems)}")
        rows.append(
            SandboxRow(
                name, not problems, f"{reason} in {wall:.1f} s" + (f"; {'; '.join(problems)}" if problems else "")
            )
        )
    srv.close()
    return rows


def files_outside(root: Path, allowed: list[Path], before: set[Path]) -> list[Path]:
    """Files created under the bench root (or the victim paths) that are not inside an allowed folder."""
    found = []
    for p in root.rglob("*"):
        if p.is_file() and p not in before and not any(p.is_relative_to(a) for a in allowed):
            found.append(p)
    found += [p for p in Path("/tmp").glob(Path(VICTIM).name + "*")]
    return found


async def secrets_in_log(store: EventStore) -> int:
    hits = 0
    async for stored in store.read_everything():
        text = stored.envelope.model_dump_json()
        if CANARY in text or "canarypass" in text:
            hits += 1
    return hits


def start_agents(url: str, root: Path, auth: AuthFiles, data_dir: Path) -> dict[str, subprocess.Popen[bytes]]:
    """Every agent as its own process, each with its own work dir and only its own credentials. The
    coordinator also holds an LLM key and a URL with credentials: canaries that must never reach the log."""
    from greenai.cli.agents import settings_env
    from greenai.shared.config import Settings

    procs = {}
    for name in AGENTS:
        work = root / "work" / name
        work.mkdir(parents=True, exist_ok=True)
        settings = Settings(work_dir=work, data_dir=data_dir, credentials=auth.seed(name), ack_wait_s=4)
        extra = {"OPENAI_API_KEY": CANARY} if name == "coordinator" else {}
        os.environ.update(extra)
        try:
            env = settings_env(settings, url, name)
        finally:
            for k in extra:
                os.environ.pop(k, None)
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
        if name == "coordinator":
            env["GREENAI_LLM_BASE_URL"] = "http://user:canarypass@127.0.0.1:9/v1"
        log = open(root / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "greenai", "agent", name], env=env, stdout=log, stderr=log
        )
    return procs


async def wait_for_announcements(store: EventStore, roles: set[str], timeout_s: float) -> None:
    """Until every step agent announced: an agent announces after it has bound its consumer, and on a busy
    machine starting one takes much longer than a fixed sleep allowed (inputs went unanswered in 30 s)."""
    from greenai.services.coordinator.catalogue import read_catalogue

    deadline = time.monotonic() + timeout_s
    while True:
        seen = {s.announced.agent for s in (await read_catalogue(store, 5.0)).instances.values()}
        if roles <= seen:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"agents that never announced within {timeout_s:.0f} s: {sorted(roles - seen)}")
        await asyncio.sleep(1.0)


def write_results(table: str) -> None:
    heading = "## Hostile inputs (bench/hostile.py)"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Results\n"
    if heading in text:
        start = text.index(heading)
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + table + (text[nxt:] if nxt >= 0 else "\n")
    else:
        text = text.rstrip("\n") + "\n\n" + table + "\n"
    RESULTS.write_text(text, encoding="utf-8")


async def main(args: argparse.Namespace) -> int:
    from greenai.shared.nats_server import start_nats_server

    root = Path(tempfile.mkdtemp(prefix="greenai-hostile-"))
    data_dir = Path(args.data_dir).resolve()
    auth = init_auth(root / "auth")
    server = start_nats_server(root / "nats", publish_endpoint=False, auth_conf=auth.server_conf)
    roles = Roles(server.url, auth)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    tally = Tally()
    try:
        admin = await EventStore.connect(
            server.url, "GREENAI_EVENTS", name="hostile-admin", options=client_options(auth.seed("admin"))
        )
        procs = start_agents(server.url, root, auth, data_dir)
        await wait_for_announcements(admin, set(AGENTS) - {"coordinator"}, 180.0)  # consumers bound
        before = {p for p in root.rglob("*") if p.is_file()}
        inputs = generate(args.seed, args.per_type, "fuzz") + path_inputs("path", root / "outside")
        if args.smoke:
            inputs = inputs[:: max(1, len(inputs) // 12)]
        print(f"{len(inputs)} bus inputs, {len(event_types())} event types", flush=True)
        await run_bus_inputs(admin, roles, inputs, tally, wait_s=60 if not args.smoke else 30)
        await run_forged(admin, roles, tally, args.seed)
        sandbox_rows = run_sandbox_attacks(root / "work" / "evaluation", tally, args.smoke)
        crashed = [n for n, p in procs.items() if p.poll() is not None]
        allowed = [root / "work", root / "nats", root / "auth", root / "outside"] + [root / f"{n}.log" for n in AGENTS]
        outside = files_outside(root, allowed, before)
        secrets = await secrets_in_log(admin)
        await admin.close()
    finally:
        stop_all(list(procs.values()), 20)
        await roles.close()
        server.stop()
    answered = tally.answered_by_event + tally.refused_by_server
    lines = [
        "## Hostile inputs (bench/hostile.py)",
        "",
        f"Real agent processes (own work dirs, own NATS identities) on an auth-on nats-server; seed {args.seed}"
        + (", smoke run" if args.smoke else "")
        + ".",
        "",
        "| inputs tried | agent crashes | answered by an event | refused by the server | unanswered | files outside the work dirs | secrets in events |",
        "|---|---|---|---|---|---|---|",
        f"| {tally.tried} | {len(crashed)} {crashed if crashed else ''} | {tally.answered_by_event} | {tally.refused_by_server} "
        f"| {tally.tried - answered - sum(1 for r in sandbox_rows if r.contained)} | {len(outside)} | {secrets} |",
        "",
        "| category | tried | answered / contained |",
        "|---|---|---|",
        *[f"| {c} | {n} | {a} |" for c, (n, a) in sorted(tally.by_category.items())],
        "",
        "| sandbox attack | contained | what happened |",
        "|---|---|---|",
        *[f"| {r.attack} | {'yes' if r.contained else '**no**'} | {r.detail} |" for r in sandbox_rows],
    ]
    if tally.unanswered or outside:
        lines += [
            "",
            "Not answered or not contained:",
            *[f"- {u}" for u in tally.unanswered[:40]],
            *[f"- file {p}" for p in outside[:20]],
        ]
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.smoke:
        write_results(table)
    shutil.rmtree(root, ignore_errors=True)
    ok = not crashed and not outside and not secrets and not tally.unanswered
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-type", type=int, default=6)
    parser.add_argument("--smoke", action="store_true", help="a few inputs of each kind, seconds; no RESULTS update")
    parser.add_argument(
        "--data-dir", default=os.environ.get("GREENAI_DATA_DIR", str(Path(__file__).parents[2] / "shared" / "data"))
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
