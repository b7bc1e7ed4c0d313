"""The dashboard's web server: three pages, their Server-Sent Event streams (a snapshot, then deltas),
JSON snapshots, and plotly.js from the installed `plotly` package (it works offline)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from greenai.events import new_event
from greenai.events.subjects import check_experiment_id
from greenai.services.dashboard import views
from greenai.services.dashboard.actions import (
    CancelForm,
    Refused,
    ReviewForm,
    RunForm,
    cancel_request,
    parse,
    review_event,
    run_request,
)
from greenai.services.dashboard.feed import Feed
from greenai.shared.config import Settings
from greenai.shared.eventstore import ConcurrencyError, EventStore

STATIC = Path(__file__).parent / "static"
KEEPALIVE_S = 15.0
AGENTS_REFRESH_S = 5.0  # staleness changes with time alone: the agents page is re-sent this often
BATCH_S = 0.05  # changes this close together go out as one delta
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
MAX_FORM_BYTES = 16 * 1024
MAX_COMPARED = 8  # experiments on one compare chart
HV_NOTE = (
    "Accuracy up, decode latency and size down, the last two relative to the baseline; reference point: "
    "accuracy 0 and twice the baseline's latency and size (the baseline alone is worth its accuracy)."
)
Delta = Callable[[int], tuple[str, dict[str, Any]] | None]
Opener = Callable[[], Any]  # an async callable giving an EventStore
READ_ONLY = (
    "read-only: this dashboard has no `cli` credentials (cli.nk in the auth dir, written by `greenai auth init`)"
)
RUN_FORM = (
    '<details id="run-box"><summary>Start a run</summary><form id="run-form">'
    '<label>model <input name="model" value="smollm2-135m"></label> '
    '<label>target benchmark <input name="dataset" value="arc_easy"></label> '
    '<label>episodes <input name="episodes" type="number" min="1" value="3"></label> '
    '<label>items per evaluation <input name="limit" type="number" min="1" value="20"></label> '
    '<label>policy <select name="policy"><option value="">default</option><option>grid</option><option>tpe</option>'
    "<option>tpe-prior</option><option>nsga2</option><option>random</option><option>bandit</option>"
    "<option>llm</option></select></label> "
    '<label>objective <select name="objective"><option>balanced</option><option>accuracy_focused</option>'
    "<option>latency_focused</option><option>memory_constrained</option></select></label> "
    '<label><input name="interactive" type="checkbox"> review each decision</label> '
    '<label>name <input name="name" placeholder="generated"></label> '
    '<button type="submit">Request the run</button></form><p id="run-error" class="reason"></p></details>'
)


def plotly_js() -> Path:
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise RuntimeError(f"plotly.min.js not found in the installed plotly package ({path})")
    return path


def _page(title: str, kind: str, body: str, status: int = 200, **data: str) -> HTMLResponse:
    """A page: the same shell for all, plotly.js (4.6 MB) and the chart scripts only where a chart is
    drawn (before dashboard.js, which starts the page). plotly.js loads `async`, beside them: the page
    connects and draws its tables while plotly.js is parsed (seconds on a slow machine), and draws its
    charts once it is there (`plot` in charts.js)."""
    attrs = " ".join(f'data-{k}="{escape(v)}"' for k, v in data.items())
    charts = kind in ("experiment", "compare")
    scripts = ("charts.js", "actions.js") if charts else ()
    plotly = '<script id="plotly-js" src="/static/plotly.min.js" async></script>' if charts else ""
    plotly += "".join(f'<script src="/static/{name}" defer></script>' for name in scripts)
    html = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · GreenAI</title>"
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css">'
        f'{plotly}<script src="/static/dashboard.js" defer></script></head>'
        f'<body data-page="{kind}" {attrs}>'
        '<nav><a href="/">Experiments</a> <a href="/compare">Compare</a> <a href="/agents">Agents</a>'
        '<span id="conn" class="conn">connecting…</span></nav>'
        f"<main>{body}</main></body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def create_app(
    feed: Feed, store_opener: Opener | None = None, cli_opener: Opener | None = None, settings: Settings | None = None
) -> FastAPI:
    """The app over a feed; the log `store_opener` opens (as viewer) is followed for the app's lifetime.
    With `cli_opener` (the `cli` role's connection) and `settings`, the pages may request runs and
    review decisions; without, they are read-only."""
    actions: dict[str, EventStore] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        store: EventStore | None = None
        task: asyncio.Task[None] | None = None
        if store_opener is not None:
            store = await store_opener()
            task = asyncio.create_task(feed.follow(store))
        if cli_opener is not None and settings is not None:
            actions["cli"] = await cli_opener()
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                await feed.close()  # the read models' last snapshot: the next start folds only what follows
            for s in (store, actions.pop("cli", None)):
                if s is not None:
                    await s.close()

    app = FastAPI(title="GreenAI dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def not_found(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        title = "Not found" if exc.status_code == 404 else "Refused"
        body = f'<h1>{title}</h1><p class="notfound">{escape(str(exc.detail))}</p>'
        body += '<p><a href="/">All experiments</a></p>'
        return _page(title, "notfound", body, status=exc.status_code)

    async def stream(
        request: Request,
        snapshot: Callable[[], dict[str, Any]],
        delta: Delta,
        every: float,
        wake: list[str] | None = None,
    ) -> Response:
        async def events() -> AsyncIterator[str]:
            await feed.ready.wait()
            await feed.wake(*(wake or []))  # experiments resumed dormant are folded before they are shown
            sent = feed.read.last_seq
            yield "retry: 2000\n\n" + _sse("snapshot", snapshot() | {"error": feed.error})
            while not await request.is_disconnected():
                changed = await feed.changed(sent, every)
                if changed:
                    await asyncio.sleep(BATCH_S)
                update = delta(sent) if changed or every < KEEPALIVE_S else None
                sent = feed.read.last_seq
                yield _sse(update[0], update[1]) if update else ": keepalive\n\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    def experiment_id_or_404(experiment_id: str) -> str:
        try:
            return check_experiment_id(experiment_id)
        except ValueError:
            raise HTTPException(404, f"{experiment_id!r} is not an experiment id (letters, digits, _ and -)") from None

    @app.get("/static/plotly.min.js")
    async def plotly() -> FileResponse:  # the same for the life of the install: a browser keeps it a day
        return FileResponse(
            plotly_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    @app.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        files = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        if name not in files:
            raise HTTPException(404, f"no file {name!r}")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(files[name], media_type=kind)

    @app.get("/", response_class=HTMLResponse)
    async def experiments_page() -> HTMLResponse:
        form = RUN_FORM if actions else f'<p class="readonly">{escape(READ_ONLY)}</p>'
        body = f'<h1>Experiments</h1>{form}<table id="experiments"></table>'
        return _page("Experiments", "experiments", body, actions="1" if actions else "")

    @app.get("/agents", response_class=HTMLResponse)
    async def agents_page() -> HTMLResponse:
        return _page("Agents", "agents", '<h1>Agents</h1><table id="agents"></table>')

    @app.get("/experiments/{experiment_id}", response_class=HTMLResponse)
    async def experiment_page(experiment_id: str) -> HTMLResponse:
        exp = experiment_id_or_404(experiment_id)
        await feed.ready.wait()
        known = feed.read.known(exp)
        missing = (
            f'<p id="missing" class="notfound">No experiment {escape(exp)!r} in the log. This page follows the '
            "log and shows it as soon as it is requested.</p>"
        )
        body = (
            f'<h1>Experiment <span id="exp-id">{escape(exp)}</span></h1>{"" if known else missing}'
            '<section id="summary"></section><section id="cancel"></section><section id="review"></section>'
            '<section><h2>Pareto front</h2><label>x <select id="axis-x"></select></label> '
            '<label>y <select id="axis-y"></select></label><div id="chart"></div><div id="card"></div></section>'
            f'<section><h2>Hypervolume over episodes</h2><p class="note">{escape(HV_NOTE)}</p>'
            '<div id="hv-chart"></div></section>'
            '<section><h2>Episodes</h2><table id="timeline"></table></section>'
            '<section><h2>Events</h2><label>type <select id="tail-filter"><option value="">all</option></select>'
            '</label><table id="tail"></table></section>'
        )
        title = exp if known else "Experiment not found"
        return _page(title, "experiment", body, 200 if known else 404, exp=exp, actions="1" if actions else "")

    @app.get("/api/experiments")
    async def experiments_json() -> dict[str, Any]:
        await feed.ready.wait()
        return {"rows": feed.read.rows(), "last_seq": feed.read.last_seq, "resumed_from": feed.resumed_from}

    @app.get("/api/experiments/{experiment_id}")
    async def experiment_json(experiment_id: str) -> dict[str, Any]:
        exp = experiment_id_or_404(experiment_id)
        await feed.ready.wait()
        await feed.wake(exp)
        model = feed.read.get(exp)
        if model is None:
            raise HTTPException(404, f"no experiment {exp!r} in the log")
        return views.experiment_snapshot(model)

    @app.get("/api/stream/experiments")
    async def experiments_stream(request: Request) -> Response:
        def snapshot() -> dict[str, Any]:
            return {"rows": [views.listed_row(r) for r in feed.read.rows()]}

        def delta(since: int) -> tuple[str, dict[str, Any]] | None:
            rows = [views.listed_row(r) for r in feed.read.rows(since)]
            return ("delta", {"rows": rows}) if rows else None

        return await stream(request, snapshot, delta, KEEPALIVE_S)

    @app.get("/api/stream/experiments/{experiment_id}")
    async def experiment_stream(request: Request, experiment_id: str) -> Response:
        exp = experiment_id_or_404(experiment_id)
        shown = {"exists": False}
        sent = views.PointsSent()

        def snapshot() -> dict[str, Any]:
            snap = views.experiment_snapshot(feed.read.get(exp))
            shown["exists"] = snap["exists"]
            sent.whole(snap)
            return snap

        def delta(since: int) -> tuple[str, dict[str, Any]] | None:
            model = feed.read.get(exp)
            if model is None or model.last_seq <= since:
                return None
            if not shown["exists"]:  # it appeared after the page opened: the page gets it whole
                return "snapshot", snapshot()
            return "delta", sent.changes(views.experiment_delta(model, since))

        return await stream(request, snapshot, delta, KEEPALIVE_S, wake=[exp])

    @app.get("/api/stream/agents")
    async def agents_stream(request: Request) -> Response:
        def snapshot() -> dict[str, Any]:
            return {"agents": views.agents(feed.read, datetime.now(UTC))}

        last = {"at": 0.0}

        def delta(since: int) -> tuple[str, dict[str, Any]] | None:
            now = asyncio.get_running_loop().time()
            if feed.read.agents_seq <= since and now - last["at"] < AGENTS_REFRESH_S:
                return None  # events of experiments only, and the staleness was sent a moment ago
            last["at"] = now
            return "snapshot", snapshot()

        return await stream(request, snapshot, delta, AGENTS_REFRESH_S)

    def compared_or_404(ids: list[str]) -> list[str]:
        unique = list(dict.fromkeys(experiment_id_or_404(e) for e in ids))
        if len(unique) > MAX_COMPARED:
            raise HTTPException(400, f"{len(unique)} experiments: compare {MAX_COMPARED} at most")
        return unique

    @app.get("/compare", response_class=HTMLResponse)
    async def compare_page(request: Request) -> HTMLResponse:
        ids = compared_or_404(request.query_params.getlist("e"))
        hint = (
            ""
            if len(ids) >= 2
            else '<p id="compare-hint">Tick two or more experiments on the <a href="/">list</a>.</p>'
        )
        body = (
            f'<h1>Compare</h1>{hint}<label>x <select id="axis-x"></select></label> '
            '<label>y <select id="axis-y"></select></label><div id="chart"></div><table id="compared"></table>'
        )
        return _page("Compare", "compare", body, exps=",".join(ids))

    @app.get("/api/stream/compare")
    async def compare_stream(request: Request) -> Response:
        ids = compared_or_404(request.query_params.getlist("e"))

        def snapshot() -> dict[str, Any]:
            return {"experiments": [views.compared(feed.read.get(x), x) for x in ids]}

        def delta(since: int) -> tuple[str, dict[str, Any]] | None:
            changed = any((m := feed.read.get(x)) is not None and m.last_seq > since for x in ids)
            return ("snapshot", snapshot()) if changed else None

        return await stream(request, snapshot, delta, KEEPALIVE_S, wake=ids)

    async def form_body(request: Request) -> object:
        """The JSON body of an action, or `Refused`: read-only, another site's page (Origin), not JSON
        (a cross-site HTML form cannot send JSON without the browser asking first), too large, malformed."""
        if "cli" not in actions:
            raise Refused(READ_ONLY, 403)
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
            raise Refused(f"refused: a request from another site ({origin})", 403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise Refused("refused: send the form as application/json", 415)
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_FORM_BYTES:
                raise Refused(f"refused: a form over {MAX_FORM_BYTES} bytes", 413)
        try:
            return json.loads(raw)
        except ValueError:
            raise Refused("bad form: not JSON") from None

    async def caught_up(seq: int, within_s: float = 5.0) -> None:
        """Answer once the read model holds what was appended, so the page it leads to shows it."""
        deadline = asyncio.get_running_loop().time() + within_s
        while feed.read.last_seq < seq and (left := deadline - asyncio.get_running_loop().time()) > 0:
            await feed.changed(feed.read.last_seq, left)

    def refused(exc: Refused) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.post("/api/runs")
    async def request_run(request: Request) -> JSONResponse:
        try:
            form = parse(RunForm, await form_body(request))
            assert settings is not None
            experiment_id, run = await asyncio.to_thread(run_request, form, settings)
            event = new_event(experiment_id, run, producer="dashboard", key="run")
            try:
                stored = await actions["cli"].append(event, expected_last_seq=0)
            except ConcurrencyError:
                raise Refused(f"experiment {experiment_id} already exists; pick another name", 409) from None
        except Refused as exc:
            return refused(exc)
        await caught_up(stored.seq)
        return JSONResponse({"experiment": experiment_id, "url": f"/experiments/{experiment_id}"}, status_code=201)

    @app.post("/api/experiments/{experiment_id}/review")
    async def review(request: Request, experiment_id: str) -> JSONResponse:
        exp = experiment_id_or_404(experiment_id)
        try:
            form = parse(ReviewForm, await form_body(request))
            await feed.wake(exp)
            event = review_event(feed.read, exp, form)
            stored = await actions["cli"].append(event)
        except Refused as exc:
            return refused(exc)
        await caught_up(stored.seq)
        return JSONResponse({"reviewed": f"{exp} episode {form.episode} proposal {form.proposal}"}, status_code=201)

    @app.post("/api/experiments/{experiment_id}/cancel")
    async def cancel(request: Request, experiment_id: str) -> JSONResponse:
        exp = experiment_id_or_404(experiment_id)
        try:
            form = parse(CancelForm, await form_body(request))
            await feed.wake(exp)
            stored = await actions["cli"].append(cancel_request(feed.read, exp, form))
        except Refused as exc:
            return refused(exc)
        await caught_up(stored.seq)
        return JSONResponse({"cancelled": exp}, status_code=201)

    return app
