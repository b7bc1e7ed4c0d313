"""Dashboard figures: replay time and server memory with a large log, time to the first full render of
the experiments page and of a 1,000-episode experiment in headless Chromium, the delay from an
append to its point on the page (p50/p95), and a restart: resumed from the read models' snapshot
(the sequence it resumed from, the time to ready) instead of replaying the log.

Runs its own nats-server and `greenai dashboard` (a real process) in a temporary folder, and drives the
system Chromium through Playwright. Figures are printed, never asserted.

    python bench/dashboard.py [--events 100000] [--episodes 1000] [--appends 200]
    python bench/dashboard.py --smoke   # seconds: 600 events, 20 episodes, 10 appends
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.event_log import synthetic_log  # noqa: E402
from greenai.events import Envelope, new_event  # noqa: E402
from greenai.events.experiment import EpisodeDecided, RunRequested, Step  # noqa: E402
from greenai.shared.eventstore import EventStore  # noqa: E402
from greenai.shared.nats_server import start_nats_server  # noqa: E402
from greenai.shared.projection_snapshot import DASHBOARD_BUCKET, ensure_projection_bucket  # noqa: E402
from tests import factories as f  # noqa: E402
from tests.integration.dashboard_browser import BROWSER, browser, open_page, running_dashboard  # noqa: E402


def episode(exp: str, n: int) -> list[Envelope]:
    step = Step(kind="quantize", method="autoround", params={"bits": (2, 3, 4, 8)[n % 4], "group_size": 64 + n})
    decided = EpisodeDecided(episode=n, action="compress", steps=[step], policy="tpe", rationale=f"bench {n}")
    acc = 0.3 + (n * 7919 % 1000) / 2500
    return [new_event(exp, decided, producer="bench"), f.evaluated(exp, n, acc, 20 + n % 37, 300 + n % 53, 10**6 + n)]


def big_experiment(exp: str, episodes: int) -> list[Envelope]:
    run = new_event(exp, RunRequested(model="m", dataset="arc_easy", episodes=episodes), producer="bench", key="run")
    out = [run, f.spec(exp), f.evaluated(exp, 0, 0.6, 50, 500, 4 * 10**6)]
    for n in range(1, episodes + 1):
        out += episode(exp, n)
    return out


async def publish(store: EventStore, events: list[Envelope]) -> None:
    for i in range(0, len(events), 500):
        futures = [
            await store.js.publish_async(e.subject, e.encode(), headers={"Nats-Msg-Id": str(e.event_id)})
            for e in events[i : i + 500]
        ]
        await asyncio.gather(*futures)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(total: int, episodes: int, appends: int) -> None:
    if BROWSER is None:
        sys.exit("no Chromium: apt-get install chromium-headless-shell")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_nats_server(Path(tmp) / "nats", publish_endpoint=False)
        try:
            store = await EventStore.connect(server.url, "GREENAI_EVENTS")
            await ensure_projection_bucket(store.js, bucket=DASHBOARD_BUCKET)  # what `greenai up` creates as admin
            background = synthetic_log(total)
            big = big_experiment("big", episodes)
            await publish(store, [*background, *big])
            experiments = len({e.experiment_id for e in background}) + 1
            print(
                f"log: {len(background) + len(big):,} events, {experiments:,} experiments, one of {episodes} episodes"
            )

            (Path(tmp) / "auth").mkdir()
            t0 = time.perf_counter()
            with running_dashboard(server.url, Path(tmp) / "auth", Path(tmp) / "dash", ready_within_s=900) as url:
                ready = time.perf_counter() - t0
                (dashboard,) = [p for p in psutil.Process().children() if "dashboard" in p.cmdline()]
                rss = dashboard.memory_info().rss / 2**20
                print(f"dashboard up (process start + replay of the whole log)   {ready:8.1f} s")
                print(f"server memory with the log loaded                         {rss:8.0f} MiB RSS")
                async with browser() as b:
                    t0 = time.perf_counter()
                    page, _ = await open_page(b, url + "/")
                    await page.page.locator("tr.exp").nth(experiments - 1).wait_for(timeout=120_000)
                    print(
                        f"experiments page, first full render ({experiments:,} rows)      {time.perf_counter() - t0:8.2f} s"
                    )

                    t0 = time.perf_counter()
                    page, _ = await open_page(b, url + "/experiments/big")
                    await page.page.wait_for_selector(f'#chart[data-points="{episodes + 1}"]', timeout=120_000)
                    await page.page.locator("#timeline tr.episode").nth(episodes - 1).wait_for(timeout=120_000)
                    print(
                        f"experiment page, first full render ({episodes} episodes)   {time.perf_counter() - t0:8.2f} s"
                    )

                    delays = []
                    for n in range(episodes + 1, episodes + 1 + appends):
                        decided, evaluated = episode("big", n)
                        await store.append(decided)
                        t0 = time.perf_counter()
                        await store.append(evaluated)
                        await page.page.wait_for_selector(f'#chart[data-points="{n + 1}"]', timeout=30_000)
                        delays.append(time.perf_counter() - t0)
                    print(
                        f"append -> point on the page, {appends} appends: p50 {statistics.median(delays) * 1000:.0f} ms, "
                        f"p95 {pct(delays, 0.95) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
                    )
                    errors = page.errors
            # stopped (its last snapshot stored), the log moves on, started again: it resumes, not replays
            await publish(store, synthetic_log(min(1000, total))[:50])
            t0 = time.perf_counter()
            with running_dashboard(server.url, Path(tmp) / "auth", Path(tmp) / "dash", ready_within_s=900) as url:
                ready = time.perf_counter() - t0
                with urllib.request.urlopen(url + "/api/experiments", timeout=60) as answer:
                    listed = json.load(answer)
                print(f"dashboard restart (snapshot + 50-event tail)              {ready:8.1f} s "
                      f"(resumed from sequence {listed['resumed_from']:,} of {listed['last_seq']:,})")  # fmt: skip
            print(f"console errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
            await store.close()
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--appends", type=int, default=200)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.events, args.episodes, args.appends = 600, 20, 10
    asyncio.run(main(args.events, args.episodes, args.appends))
