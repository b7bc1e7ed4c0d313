"""The host lease with real processes on a real server: a latency measurement never overlaps a heavy
job on the same host, waits for the running ones, and a holder that dies frees the host by expiry."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nats

from greenai.shared.auth import AuthFiles, client_options
from greenai.shared.host_lease import HostGate, ensure_hosts_bucket
from greenai.shared.nats_server import EmbeddedNats

WORKER = textwrap.dedent("""
    import asyncio, json, sys, time
    import nats
    from greenai.shared.auth import client_options
    from greenai.shared.host_lease import HostGate

    async def main(url, seed, mode, out, rounds):
        nc = await nats.connect(url, **client_options(__import__("pathlib").Path(seed)))
        gate = HostGate(nc.jetstream(), host="box", ttl_s=float(sys.argv[6]))
        spans = []
        for _ in range(rounds):
            cm = gate.exclusive(mode) if mode == "latency" else gate.heavy(mode)
            async with cm:
                start = time.time()
                await asyncio.sleep(0.6)
                spans.append([start, time.time()])
            await asyncio.sleep(0.05)
        open(out, "w").write(json.dumps(spans))
        await nc.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
""")


def overlap(a: list[list[float]], b: list[list[float]]) -> list[tuple[list[float], list[float]]]:
    return [(x, y) for x in a for y in b if x[0] < y[1] and y[0] < x[1]]


async def test_latency_never_overlaps_heavy_jobs_across_processes(
    server: EmbeddedNats, auth: AuthFiles, tmp_path: Path
) -> None:
    admin = await nats.connect(server.url, **client_options(auth.seed("admin")))
    await ensure_hosts_bucket(admin.jetstream())
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    jobs = {"heavy-1": ("quantization", 5), "heavy-2": ("pruning", 5), "latency": ("evaluation", 4)}
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                str(script),
                server.url,
                str(auth.seed(role)),
                name,
                str(tmp_path / f"{name}.json"),
                str(rounds),
                "6",
            ]
        )
        for name, (role, rounds) in jobs.items()
    }
    for p in procs.values():
        assert p.wait(120) == 0
    spans = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in jobs}
    bad = overlap(spans["latency"], spans["heavy-1"] + spans["heavy-2"])
    assert bad == [], bad
    assert overlap(spans["heavy-1"], spans["heavy-2"]), "heavy jobs may share the host with each other"
    await admin.close()


async def test_a_dead_holder_frees_the_host_when_its_key_expires(
    server: EmbeddedNats, auth: AuthFiles, tmp_path: Path
) -> None:
    admin = await nats.connect(server.url, **client_options(auth.seed("admin")))
    js = admin.jetstream()
    await js.create_key_value(bucket="greenai-hosts", history=1, ttl=2.0)
    kv = await js.key_value("greenai-hosts")
    await kv.put("box.busy.crashed", b"a job whose agent was SIGKILLed")  # never refreshed, never deleted
    gate = HostGate(js, host="box", ttl_s=2.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with gate.exclusive("evaluation") as waited:
        took = loop.time() - start
    assert waited == 1 and 1.0 < took < 10.0
    await admin.close()


async def test_without_the_bucket_the_gate_is_off_and_nothing_blocks(server: EmbeddedNats, auth: AuthFiles) -> None:
    nc = await nats.connect(server.url, **client_options(auth.seed("evaluation")))
    gate = HostGate(nc.jetstream(), host="box")
    async with gate.exclusive("evaluation") as waited, gate.heavy("x"):
        assert waited == 0
    await nc.close()
