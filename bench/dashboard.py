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
from typing import Any

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


def server_costs(events: list[Envelope], experiments: int) -> None:
    """The server's own costs, in process and in CPU seconds (wall time says little on a busy machine):
    a full fold of the log, the experiments page's snapshot, the read models' snapshot stored and read
    back, waking the big experiment from its history, one result's delta at its size."""
    from greenai.events.envelope import decode
    from greenai.services.dashboard import readmodel_state, views
    from greenai.services.dashboard.readmodel import ReadModel
    from greenai.shared.eventstore_records import History, StoredEvent

    def cpu(what: str, fn: Any) -> Any:
        t0 = time.process_time()
        out = fn()
        print(f"  {what:<66} {time.process_time() - t0:7.3f} CPU s")
        return out

    print(f"server costs in process ({len(events):,} events, {experiments:,} experiments):")
    raw = [e.encode() for e in events]
    decoded = cpu("decode every event (validated)", lambda: [StoredEvent(i, decode(r)) for i, r in enumerate(raw, 1)])
    read = ReadModel()
    cpu("fold them into the read models", lambda: [read.apply(x) for x in decoded])
    rows = cpu("experiments page snapshot, first (every row's Pareto fold)", read.rows)
    cpu("experiments page snapshot, again (rows kept per change)", read.rows)
    full = len(json.dumps(rows, separators=(",", ":"), default=str))
    slim = len(json.dumps([views.listed_row(r) for r in rows], separators=(",", ":"), default=str))
    print(f"  experiments page snapshot: {slim / 1024:,.0f} KiB sent (all fields: {full / 1024:,.0f} KiB)")
    state = cpu("read models' snapshot: dump", lambda: readmodel_state.dump_state(read))
    print(f"  read models' snapshot: {len(state) / 1024:,.0f} KiB before compression")
    resumed = cpu(
        "read models' snapshot: load (validated, experiments dormant)", lambda: readmodel_state.load_state(state)
    )
    big = History("big", [x for x in decoded if x.envelope.experiment_id == "big"])
    model = cpu(f"wake the big experiment ({len(big.events):,} events, already decoded)", lambda: resumed.wake(big))
    snap = cpu("its page's snapshot", lambda: views.experiment_snapshot(model))
    print(f"  its page's snapshot: {len(json.dumps(snap, default=str)) / 1024:,.0f} KiB")
    sent = views.PointsSent()
    sent.whole(snap)
    seq, n = len(events), len(model.state.episodes) + 1
    t0, sizes = time.process_time(), []
    for k in range(20):
        since = seq
        for env in episode("big", n + k):
            seq += 1
            resumed.apply(StoredEvent(seq, env))
        sizes.append(len(json.dumps(sent.changes(views.experiment_delta(model, since)), default=str)))
    per = (time.process_time() - t0) / 20
    print(f"  one result's delta (fold, Pareto, points, JSON), mean of 20         {per:7.3f} CPU s, "
          f"{statistics.mean(sizes) / 1024:.1f} KiB")  # fmt: skip


async def page_measures(page: Any) -> str:
    """The page's own `performance.measure`s (dashboard.js: parse, table, chart, plotly, timeline...), in ms."""
    await asyncio.sleep(0.3)  # the hypervolume chart is drawn a frame after the front
    entries = await page.evaluate(
        "performance.getEntriesByType('measure').map(e => [e.name, e.startTime, e.duration])"
    )  # fmt: skip
    nav = await page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    parts = [f"{name} {duration:.0f} ms (at {start:.0f})" for name, start, duration in entries]
    return ", ".join([*parts, f"load event (plotly.js evaluated) at {nav:.0f} ms"])


async def plotly_alone(b: Any) -> float:
    """plotly.min.js evaluated in an empty page: the floor under any chart page's first render."""
    from greenai.services.dashboard.server import plotly_js

    body = plotly_js().read_bytes()
    context = await b.new_context()
    html = b"<script src='/t0.js'></script><script src='/plotly.js'></script><script src='/t1.js'></script>"
    files = {"/t0.js": b"window.t0 = performance.now()", "/plotly.js": body, "/t1.js": b"window.t1 = performance.now()"}

    async def serve(route: Any) -> None:
        path = "/" + route.request.url.split("/", 3)[-1]
        kind = "text/javascript" if path in files else "text/html"
        await route.fulfill(body=files.get(path, html), content_type=kind)

    await context.route("http://plotly.test/**", serve)
    page = await context.new_page()
    await page.goto("http://plotly.test/")
    seconds: float = await page.evaluate("(window.t1 - window.t0) / 1000")
    await context.close()
    return seconds


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
            server_costs([*background, *big], experiments)

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
                    print(f"  where the page's time went: {await page_measures(page.page)}")
                    print(
                        f"  plotly.min.js alone, evaluated in a blank page               {await plotly_alone(b):8.2f} s"
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
