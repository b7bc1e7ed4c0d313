"""Event-log figures: appends/s, replay events/s, rebuilding both projections from 100k events, what
the skill memory costs a decision at 1k, 10k and 100k events (refolded vs kept), and a coordinator's
restart to a ready skill memory: a full replay vs resuming its snapshot and folding the tail.

Runs its own nats-server (JetStream, file storage) in a temporary folder. Figures are printed,
never asserted; they depend on the machine and on what else runs on it.

    python bench/event_log.py [--events 100000]
    python bench/event_log.py --smoke   # seconds: 600 events, the same figures
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from greenai.events import Envelope, new_event
from greenai.events.experiment import EpisodeDecided, ModelSpec, RunRequested, SpecInferred, Step
from greenai.events.jobs import ArtifactRef, QuantizeRequested
from greenai.events.results import Artifact, Energy, EvaluateCompleted, Latency, QuantizeCompleted
from greenai.projections.pareto import pareto_front
from greenai.projections.skills import skill_memory
from greenai.services.coordinator.skills_cache import SkillsCache
from greenai.shared.eventstore import EventStore
from greenai.shared.nats_server import start_nats_server
from greenai.shared.projection_snapshot import ensure_projection_bucket

SPEC = ModelSpec(
    model="m", source="local", location="m", architecture="LlamaForCausalLM", family="llama",
    num_parameters=134_515_008, num_layers=30, hidden_size=576, intermediate_size=1536, num_attention_heads=9,
    num_key_value_heads=3, vocab_size=49152, context_length=8192, dtype="float32", tied_embeddings=True,
    size_bytes=10**8,
)  # fmt: skip


def synthetic_log(total: int) -> list[Envelope]:
    """Experiments of 2 + 4 per episode events, shaped like real runs (decisions, jobs, results)."""
    out: list[Envelope] = []
    exp_n = 0
    while len(out) < total:
        exp = f"bench-{exp_n}"
        exp_n += 1
        run = new_event(exp, RunRequested(model="m", dataset="arc_easy", episodes=10), producer="bench")
        out += [run, new_event(exp, SpecInferred(spec=SPEC), producer="bench", cause=run)]
        for ep in range(0, 11):
            bits = (2, 3, 4, 8)[ep % 4]
            if ep:
                out.append(
                    new_event(
                        exp,
                        EpisodeDecided(
                            episode=ep,
                            action="compress",
                            steps=[Step(kind="quantize", method="autoround", params={"bits": bits})],
                            policy="grid",
                            rationale="bench",
                        ),
                        producer="bench",
                        cause=run,
                    )
                )
                out.append(
                    new_event(
                        exp,
                        QuantizeRequested(
                            job_id=f"{exp}-{ep}",
                            episode=ep,
                            source=ArtifactRef(kind="base", model="m"),
                            method="autoround",
                            params={"bits": bits},
                        ),
                        producer="bench",
                        cause=run,
                    )
                )
                out.append(
                    new_event(
                        exp,
                        QuantizeCompleted(
                            job_id=f"{exp}-{ep}", episode=ep, method="autoround", params={"bits": bits},
                            artifact=Artifact(sha256="0" * 64, bucket="", bytes=10**8 * bits // 32),
                            bits_per_weight=bits + 0.5, wall_s=1.0, peak_rss_mb=900.0,
                        ),
                        producer="bench",
                        cause=run,
                    )
                )  # fmt: skip
            acc = 0.6 - 0.4 / (bits * (1 + (ep * 7 + exp_n) % 5))
            out.append(
                new_event(
                    exp,
                    EvaluateCompleted(
                        job_id=f"{exp}-{ep}-e", episode=ep, task="arc_easy", metric="acc", accuracy=max(acc, 0.0),
                        accuracy_stderr=0.01, ci_low=0.0, ci_high=1.0, n=100, limit=100,
                        latency=Latency(
                            prefill_ms_per_token=1.0, decode_ms_per_token=20.0 + bits + ep % 3,
                            decode_tokens_per_s=40.0, device="cpu",
                        ),
                        peak_rss_mb=500.0 + bits * 10, size_bytes=10**8 * bits // 32, wall_s=1.0,
                        energy=Energy(joules=100.0 + (ep * 13 + exp_n) % 17, mode="estimated", detail=""),
                    ),
                    producer="bench",
                    cause=run,
                )
            )  # fmt: skip
    return out[:total]


async def main(total: int) -> None:
    events = synthetic_log(total)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_nats_server(Path(tmp), publish_endpoint=False)
        try:
            store = await EventStore.connect(server.url, "BENCH")
            sample = min(2000, len(events) // 2)
            t0 = time.perf_counter()
            for env in events[:sample]:
                await store.append(env)
            one_by_one = sample / (time.perf_counter() - t0)

            t0 = time.perf_counter()
            window = 500
            for i in range(sample, len(events), window):
                futures = [
                    await store.js.publish_async(e.subject, e.encode(), headers={"Nats-Msg-Id": str(e.event_id)})
                    for e in events[i : i + window]
                ]
                await asyncio.gather(*futures)
            pipelined = (len(events) - sample) / (time.perf_counter() - t0)

            t0 = time.perf_counter()
            replayed = [e.envelope async for e in store.read_everything()]
            replay_s = time.perf_counter() - t0
            n_replayed = len(replayed)

            t0 = time.perf_counter()
            front = pareto_front(replayed)
            pareto_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            skills = skill_memory(replayed)
            skills_s = time.perf_counter() - t0

            exp = events[0].experiment_id
            t0 = time.perf_counter()
            history = await store.read(exp)
            one_exp_s = time.perf_counter() - t0
            del replayed
            latencies = {len(events): await decision_latency(store)}
            restart = await restart_to_ready(store, tail=min(1000, total // 10))
            await store.close()
        finally:
            server.stop()
    for size in (1_000, 10_000) if total >= 100_000 else (total // 3,):
        latencies[size] = await decision_latency_at(size)
    print(f"events                          {len(events):>10,}")
    print(f"append, awaited one by one      {one_by_one:>10,.0f} events/s   (with Nats-Msg-Id)")
    print(f"append, pipelined (window 500)  {pipelined:>10,.0f} events/s")
    print(f"replay (decode + validate)      {n_replayed / replay_s:>10,.0f} events/s   ({replay_s:.2f} s)")
    shape = f"{len(front.candidates):,} candidates, {len(front.front)} on the front"
    print(f"fold Pareto front               {pareto_s:>10.2f} s   ({shape})")
    print(f"fold skill memory               {skills_s:>10.2f} s   ({len(skills.skills)} skills)")
    print(f"rebuild both from the log       {replay_s + pareto_s + skills_s:>10.2f} s")
    print(f"read one experiment             {one_exp_s * 1000:>10.1f} ms   ({len(history.events)} events)")
    print("skill memory a decision reads   refold whole log   kept (SkillsCache), one new event   first catch-up")
    for size, (refold, kept, first) in sorted(latencies.items()):
        print(
            f"  log of {size:>7,} events        {refold * 1000:>10.1f} ms   {kept * 1000:>20.1f} ms   {first:>12.2f} s"
        )
    full_s, resume_s, tail, stored, save_s = restart
    print(f"restart to ready skill memory   {full_s:>10.2f} s   (full replay of {len(events):,} events)")
    print(
        f"  from its snapshot + tail      {resume_s:>10.2f} s   (snapshot {stored / 1024:,.0f} KiB, saved in "
        f"{save_s:.2f} s; {tail:,}-event tail)"
    )


async def decision_latency(store: EventStore, decisions: int = 5) -> tuple[float, float, float]:
    """What the skill memory costs a decision: refolded from the whole log (as before), or kept in the
    coordinator and caught up on the one event appended since the previous decision (median)."""
    t0 = time.perf_counter()
    skill_memory([e.envelope async for e in store.read_everything()])
    refold = time.perf_counter() - t0
    cache = SkillsCache(store, snapshots=False)
    t0 = time.perf_counter()
    await cache.memory()  # a new coordinator process catches up once
    first = time.perf_counter() - t0
    kept = []
    for env in synthetic_log(decisions)[:decisions]:
        await store.append(env.model_copy(update={"event_id": uuid.uuid4(), "experiment_id": "bench-decision"}))
        t0 = time.perf_counter()
        await cache.memory()
        kept.append(time.perf_counter() - t0)
    return refold, statistics.median(kept), first


async def restart_to_ready(store: EventStore, tail: int) -> tuple[float, float, int, int, float]:
    """A coordinator's start until its skill memory is ready: folding the whole log, vs loading the
    snapshot a previous process left `tail` events ago and folding those (the resumed memory is checked
    against the full fold). Returns (full s, resumed s, tail, snapshot bytes, save s)."""
    await ensure_projection_bucket(store.js)
    full = SkillsCache(store, snapshots=False)
    t0 = time.perf_counter()
    await full.memory()
    full_s = time.perf_counter() - t0
    previous = SkillsCache(store, save_every=10**9)  # the process that stopped: saved once, by hand
    await previous.memory()
    t0 = time.perf_counter()
    stored = await previous.save()
    save_s = time.perf_counter() - t0
    await publish_all(store, [
        e.model_copy(update={"event_id": uuid.uuid4(), "experiment_id": f"tail-{e.experiment_id}"})
        for e in synthetic_log(tail)
    ])  # fmt: skip
    t0 = time.perf_counter()
    resumed = SkillsCache(store)
    memory = await resumed.memory()
    resume_s = time.perf_counter() - t0
    if memory != await full.memory() or resumed.applied != tail or not stored:
        raise SystemExit(f"resumed skill memory differs from the full fold (applied {resumed.applied}, tail {tail})")
    return full_s, resume_s, tail, stored, save_s


async def publish_all(store: EventStore, events: list[Envelope], window: int = 500) -> None:
    for i in range(0, len(events), window):
        futures = [
            await store.js.publish_async(e.subject, e.encode(), headers={"Nats-Msg-Id": str(e.event_id)})
            for e in events[i : i + window]
        ]
        await asyncio.gather(*futures)


async def decision_latency_at(size: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_nats_server(Path(tmp), publish_endpoint=False)
        try:
            store = await EventStore.connect(server.url, "BENCH")
            await publish_all(store, synthetic_log(size))
            result = await decision_latency(store)
            await store.close()
            return result
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help="600 events: checks the bench still runs")
    args = parser.parse_args()
    asyncio.run(main(600 if args.smoke else args.events))
