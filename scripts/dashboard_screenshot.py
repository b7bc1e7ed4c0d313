"""Screenshot of the live experiment page for the README: a recorded real run replayed into a fresh log.

The log is `bench/landscape/events.jsonl` (a real 42-episode `greenai run` of SmolLM2-135M on ARC-Easy,
200 items per evaluation, on this project's 2-core machine), appended to a nats-server of its own; then
`greenai dashboard` serves it and the system Chromium (through its executable path, as the browser
tests drive it) opens the experiment page once the front and the hypervolume curve are drawn. Any
console error fails the script.

    .venv/bin/python scripts/dashboard_screenshot.py [--out docs/dashboard-experiment.png]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.integration.dashboard_browser: the browser tests' own helpers

from greenai.events import decode  # noqa: E402
from greenai.projections.pareto import pareto_front  # noqa: E402
from greenai.shared.auth import client_options, init_auth  # noqa: E402
from greenai.shared.eventstore import EventStore  # noqa: E402
from greenai.shared.nats_server import start_nats_server  # noqa: E402
from tests.integration.dashboard_browser import BROWSER, browser, open_page, running_dashboard  # noqa: E402

LOG = REPO / "bench" / "landscape" / "events.jsonl"


async def shoot(out: Path, width: int, height: int) -> None:
    if BROWSER is None:
        raise SystemExit("no Chromium: apt-get install chromium-headless-shell")
    envelopes = [decode(line) for line in LOG.read_text(encoding="utf-8").splitlines() if line.strip()]
    exp = envelopes[0].experiment_id
    evaluated = len(pareto_front(envelopes).candidates)  # the points the page draws
    with tempfile.TemporaryDirectory() as tmp:
        auth = init_auth(Path(tmp) / "auth")
        server = start_nats_server(Path(tmp) / "nats", publish_endpoint=False, auth_conf=auth.server_conf)
        try:
            admin = await EventStore.connect(
                server.url, "GREENAI_EVENTS", name="admin", options=client_options(auth.seed("admin")),
                manage_stream=True,
            )  # fmt: skip
            try:
                for env in envelopes:
                    await admin.append(env)
            finally:
                await admin.close()
            with running_dashboard(server.url, auth.folder, Path(tmp) / "dash") as url:
                async with browser() as b:
                    page, _ = await open_page(b, f"{url}/experiments/{exp}")
                    p = page.page
                    await p.set_viewport_size({"width": width, "height": height})
                    await p.wait_for_selector(f'#chart[data-points="{evaluated}"]', timeout=60_000)
                    await p.wait_for_selector(f'#hv-chart[data-points="{evaluated}"]', timeout=60_000)
                    await p.wait_for_timeout(1000)  # plotly's transitions
                    out.parent.mkdir(parents=True, exist_ok=True)
                    await p.screenshot(path=str(out), full_page=False)
                    if page.errors:
                        raise SystemExit(f"console errors: {page.errors}")
        finally:
            server.stop()
    print(f"{out}: {exp}, {len(envelopes)} events, {evaluated} evaluations")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard-experiment.png")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1700)
    args = parser.parse_args()
    asyncio.run(shoot(args.out, args.width, args.height))


if __name__ == "__main__":
    main()
