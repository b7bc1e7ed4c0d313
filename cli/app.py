"""The `greenai` command line: run experiments, run agents, watch and replay the event log."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.prompt import Prompt
from rich.table import Table

from greenai.cli.agents import AGENTS, run_agent, spawn_agent, stop_all
from greenai.cli.artifacts import gc, pull
from greenai.cli.auth import auth_app
from greenai.cli.cluster import cluster_app
from greenai.cli.render import describe, front_table
from greenai.cli.staging import stage_benchmark, stage_model
from greenai.events import MalformedEvent, decode, new_event
from greenai.events.experiment import (
    DecisionProposed,
    DecisionReviewed,
    EpisodeDecided,
    ExperimentCompleted,
    ExperimentFailed,
    RunRequested,
    Step,
)
from greenai.events.results import EvaluateCompleted
from greenai.events.subjects import check_experiment_id, experiment_filter
from greenai.projections.experiment import fold_experiment
from greenai.projections.export import summary, write_experiment_folder
from greenai.projections.pareto import pareto_front
from greenai.projections.skills import skill_memory
from greenai.shared.bus import Bus, ensure_log, ensure_nats, open_store
from greenai.shared.config import ConfigError, Settings, load_settings
from greenai.shared.eventstore import ConcurrencyError, EventStore, History, NatsUnavailable, StoredEvent
from greenai.shared.logging import configure_logging, get_logger

app = typer.Typer(
    help="GreenAI: agentic compression of LLMs, driven by an event log on NATS JetStream.", no_args_is_help=True
)
console = Console()
app.add_typer(auth_app, name="auth")
app.command("pull")(pull)
app.command("gc")(gc)
app.add_typer(cluster_app, name="cluster")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Benchmark files (GREENAI_DATA_DIR).")]
WorkDir = Annotated[
    Path | None, typer.Option("--work-dir", help="Artifacts, experiments, NATS store (GREENAI_WORK_DIR).")
]
NatsUrl = Annotated[str | None, typer.Option("--nats-url", help="NATS server (GREENAI_NATS_URL); unset: embedded.")]


def _settings(
    data_dir: Path | None = None, work_dir: Path | None = None, nats_url: str | None = None, **more: object
) -> Settings:
    try:
        return load_settings(data_dir=data_dir, work_dir=work_dir, nats_url=nats_url, **more)
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]bad configuration:[/red] {exc}")
        raise typer.Exit(2) from exc


def _check_benchmarks(
    dataset: str, secondary: list[str], trust_code: bool = False, data_dir: Path | None = None
) -> None:
    """Refuse an unknown or malformed benchmark here, before anything is logged or started: the same
    check the coordinator makes on every run request (services/coordinator/admission.py)."""
    from greenai.services.coordinator.admission import Refused, check_benchmarks

    try:
        check_benchmarks(dataset, secondary, data_dir, trust_code)
    except Refused as exc:
        console.print(f"[red]bad benchmark:[/red] {exc}")
        raise typer.Exit(2) from exc


def _new_experiment_id(model: str, dataset: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(model).name.lower()).strip("-")[:30] or "model"
    dataset = re.sub(r"[^A-Za-z0-9_]+", "-", Path(dataset).stem.lower()).strip("-")[:30] or "bench"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stem}-{dataset}-{stamp}-{secrets.token_hex(2)}"


@app.command()
def run(
    model: Annotated[str, typer.Option(help="Alias, .gguf file, local folder or Hugging Face id.")] = "smollm2-135m",
    dataset: Annotated[
        str,
        typer.Option(
            help="Target benchmark: arc_easy, arc_challenge, gsm8k, commonsense_qa, truthfulqa_mc1, truthfulqa_mc2, "
            "humaneval, bbh (or bbh:<task>), mmlu, hellaswag, winogrande; or your own .jsonl (with a .yaml "
            "description beside it) or lm-eval task folder."
        ),
    ] = "arc_easy",
    secondary: Annotated[
        list[str] | None,
        typer.Option("--secondary", help="Another benchmark scored on every candidate (repeatable); e.g. wikitext2."),
    ] = None,
    space: Annotated[
        str, typer.Option(help="Search space of the search policies: full, or cpu-fast (minutes a config on a CPU).")
    ] = "full",
    promote_limit: Annotated[
        int | None,
        typer.Option(help="Re-evaluate Pareto-front candidates on this many items (0: all of them)."),
    ] = None,
    episodes: Annotated[int, typer.Option(min=1)] = 3,
    limit: Annotated[int | None, typer.Option(help="Benchmark items per evaluation (default: all).")] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="llm, tpe, nsga2, random, bandit, grid, or plan (with --plan). "
            "Default: llm when an LLM is configured (GREENAI_LLM_BASE_URL or OPENAI_API_KEY), else tpe."
        ),
    ] = None,
    objective: Annotated[
        str, typer.Option(help="balanced, accuracy_focused, latency_focused or memory_constrained.")
    ] = "balanced",
    patience: Annotated[
        int | None, typer.Option(help="Stop after this many episodes without a new front point.")
    ] = None,
    time_budget_h: Annotated[float | None, typer.Option(help="Stop deciding after this many hours.")] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", help="Approve, edit or reject each proposed decision here.")
    ] = False,
    plan: Annotated[
        Path | None, typer.Option(help="JSON file: a list of episodes, each a list of {kind, method, params} steps.")
    ] = None,
    seed: int = 0,
    trust_task_code: Annotated[
        bool,
        typer.Option(
            "--trust-task-code", help="Allow an lm-eval task folder's own Python ('!function'); recorded in the run."
        ),
    ] = False,
    name: Annotated[str | None, typer.Option(help="Experiment id (default: generated).")] = None,
    agents: Annotated[
        bool | None,
        typer.Option(
            "--agents/--no-agents", help="Start the agents for this run (default: when the NATS server is ours)."
        ),
    ] = None,
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Request an experiment, follow it episode by episode, then show the Pareto front."""
    settings = _settings(data_dir, work_dir, nats_url)
    _check_benchmarks(dataset, secondary or [], trust_task_code, settings.data_dir)
    experiment_id = name or _new_experiment_id(model, dataset)
    model = stage_model(model, settings)
    dataset = stage_benchmark(dataset, settings)
    secondary = [stage_benchmark(s, settings) for s in secondary or []]
    try:
        check_experiment_id(experiment_id)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    steps = None
    if plan is not None:
        try:
            steps = TypeAdapter(list[list[Step]]).validate_json(plan.read_text())
        except (OSError, ValidationError) as exc:
            console.print(f"[red]bad plan file {plan}:[/red] {exc}")
            raise typer.Exit(2) from exc
        policy, episodes = "plan", len(steps)
    if policy is None:
        policy = "llm" if settings.llm_configured() else "tpe"
        console.print(f"policy: {policy} ({'an LLM is configured' if policy == 'llm' else 'no LLM configured'})")
    try:
        request = RunRequested(
            model=model, dataset=dataset, episodes=episodes, policy=policy, limit=limit, seed=seed, plan=steps,
            objective=objective, patience=patience, time_budget_h=time_budget_h, interactive=interactive,
            secondary=secondary or [], promote_limit=promote_limit, space=space, trust_task_code=trust_task_code,
        )  # fmt: skip
    except ValidationError as exc:
        console.print(f"[red]bad run request:[/red] {exc}")
        raise typer.Exit(2) from exc
    bus = ensure_nats(settings)
    spawn = agents if agents is not None else bus.embedded is not None
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if bus.embedded is not None or (settings.auth_path / "admin.nk").is_file():
            asyncio.run(ensure_log(settings, bus.url))
        if spawn:
            log_dir = settings.work_dir / "logs"
            procs = {a: spawn_agent(a, settings, bus.url, log_dir) for a in AGENTS}
            console.print(f"agents started ({', '.join(AGENTS)}); logs in {log_dir}")
        code = asyncio.run(_run(settings, bus, experiment_id, request, procs))
    except NatsUnavailable as exc:
        console.print(f"[red]{exc}[/red]")
        code = 1
    finally:
        stop_all(list(procs.values()))
        bus.close()
    raise typer.Exit(code)


async def _run(
    settings: Settings, bus: Bus, experiment_id: str, request: RunRequested, procs: dict[str, subprocess.Popen[bytes]]
) -> int:
    store = await open_store(settings, bus.url, "cli", "cli")
    store.watch.on_change(_connection_status)
    try:
        event = new_event(experiment_id, request, producer="cli", key="run")
        try:
            await store.append(event, expected_last_seq=0)
        except ConcurrencyError:
            console.print(f"[red]experiment {experiment_id} already exists; pick another --name[/red]")
            return 2
        console.print(f"experiment [bold]{experiment_id}[/bold] requested (NATS {bus.url})")
        outcome = await _follow(store, experiment_id, request.episodes, procs, request.interactive)
        history = await store.read(experiment_id)
        skills = skill_memory([e.envelope async for e in store.read_everything()])
        folder = write_experiment_folder(settings.experiments_dir, experiment_id, history.envelopes, skills)
        console.print(front_table(pareto_front(history.envelopes)))
        console.print(f"experiment folder: {folder}")
        return 0 if outcome == "completed" else 1
    finally:
        await store.close()


Agents = dict[str, subprocess.Popen[bytes]]


def _connection_status(state: str, outage_s: float | None) -> None:
    """One line per change of the connection, instead of the client's tracebacks."""
    if state == "disconnected":
        console.print("[yellow]NATS unreachable, retrying…[/yellow]")
    elif state == "reconnected":
        console.print(f"[green]NATS reconnected after {outage_s or 0.0:.1f} s[/green]")


def _ask_review(proposal: DecisionProposed) -> DecisionReviewed:
    """Ask the person at the terminal; their answer becomes an event, so a replay shows who decided."""
    steps = " → ".join(f"{s.kind} {s.method} {s.params}" for s in proposal.steps) or "end the run"
    console.print(
        f"[bold]episode {proposal.episode}, proposal {proposal.proposal}[/bold] by {proposal.policy}: {steps}"
    )
    console.print(f"  why: {proposal.rationale}")
    reviewer = getpass.getuser()
    while True:
        verdict = Prompt.ask("approve, edit or reject?", choices=["a", "e", "r"], default="a", console=console)
        if verdict == "a":
            return DecisionReviewed(
                episode=proposal.episode, proposal=proposal.proposal, verdict="approve", reviewer=reviewer
            )
        if verdict == "r":
            return DecisionReviewed(
                episode=proposal.episode, proposal=proposal.proposal, verdict="reject", reviewer=reviewer
            )
        text = Prompt.ask(
            'steps as JSON, e.g. [{"kind": "quantize", "method": "gptq", "params": {"bits": 4}}]', console=console
        )
        try:
            edited = TypeAdapter(list[Step]).validate_json(text)
        except ValidationError as exc:
            console.print(f"[red]not valid steps:[/red] {exc}")
            continue
        return DecisionReviewed(
            episode=proposal.episode, proposal=proposal.proposal, verdict="edit", steps=edited, reviewer=reviewer
        )


async def _follow(
    store: EventStore, experiment_id: str, episodes: int, procs: Agents, interactive: bool = False
) -> str:
    queue: asyncio.Queue[StoredEvent] = asyncio.Queue()

    async def pump() -> None:
        async for item in store.tail(experiment_filter(experiment_id), from_start=True):
            if isinstance(item, StoredEvent):
                await queue.put(item)

    task = asyncio.create_task(pump())
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task("episodes", total=episodes)
            while True:
                try:
                    stored = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    if task.done() and not task.cancelled() and (error := task.exception()) is not None:
                        raise error from None  # the log could not be followed (e.g. NatsUnavailable)
                    dead = [name for name, p in procs.items() if p.poll() is not None]
                    if procs and dead:
                        progress.console.print(f"[red]agent(s) exited unexpectedly: {', '.join(dead)}[/red]")
                        return "agents died"
                    continue
                env = stored.envelope
                progress.console.print(f"[dim]{env.time:%H:%M:%S}[/dim] {describe(env)}")
                data = env.data
                if isinstance(data, EpisodeDecided):
                    progress.update(bar, description=f"episode {data.episode}: {data.method or data.action}")
                elif isinstance(data, EvaluateCompleted) and data.episode > 0:
                    progress.advance(bar)
                elif isinstance(data, ExperimentCompleted):
                    progress.update(bar, completed=episodes)
                    return "completed"
                elif isinstance(data, ExperimentFailed):
                    return "failed"
                elif isinstance(data, DecisionProposed) and interactive:
                    progress.stop()
                    review = await asyncio.to_thread(_ask_review, data)
                    progress.start()
                    await store.append(
                        new_event(
                            experiment_id,
                            review,
                            producer="cli",
                            cause=env,
                            key=f"review:{data.episode}:{data.proposal}",
                        )
                    )
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


@app.command()
def spec(
    model: Annotated[str, typer.Argument(help="Alias, .gguf file, local folder or Hugging Face id.")] = "smollm2-135m",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A model's specs (no weights loaded), this machine's hardware, and which methods fit it."""
    from greenai.cli.spec import feasibility, hardware_probe
    from greenai.services.coordinator.spec import infer_spec
    from greenai.shared.model_io import ModelNotFoundError

    try:
        model_spec = infer_spec(model)
    except ModelNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    hardware = hardware_probe()
    float32_bytes = 4 * (model_spec.num_parameters or 0)
    rows = feasibility(float32_bytes, hardware)
    if as_json:
        print(json.dumps({"spec": model_spec.model_dump(), "hardware": hardware, "methods": rows}, indent=2))
        return
    table = Table("field", "value", title=f"model: {model}")
    for key, value in model_spec.model_dump().items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    console.print(table)
    hw = Table("field", "value", title="this machine")
    for key, value in hardware.items():
        hw.add_row(key, str(value))
    console.print(hw)
    feas = Table("method", "kind", "device", "needs GiB", "runs here", "note", title="methods on this machine")
    for r in rows:
        feas.add_row(
            r["method"],
            r["kind"],
            r["device"],
            str(r["needs_gib"]),
            "yes" if r["runs_here"] else f"no: {r['why_not']}",
            r["note"],
        )
    console.print(feas)


@app.command()
def agent(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(AGENTS)}")],
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Run one agent in this process (JSON logs on stderr)."""
    if name not in AGENTS:
        console.print(f"[red]unknown agent {name!r}; known: {', '.join(AGENTS)}[/red]")
        raise typer.Exit(2)
    try:
        run_agent(name, _settings(data_dir, work_dir, nats_url))
    except NatsUnavailable as exc:  # one line, no traceback; the job in hand goes to another instance
        get_logger(name).error("exiting: NATS unavailable", error=str(exc))
        raise typer.Exit(3) from None


@app.command()
def up(data_dir: DataDir = None, work_dir: WorkDir = None, nats_url: NatsUrl = None) -> None:
    """Start every agent (and an embedded NATS server if none is configured) until Ctrl-C."""
    settings = _settings(data_dir, work_dir, nats_url)
    bus = ensure_nats(settings)
    if bus.embedded is not None or (settings.auth_path / "admin.nk").is_file():
        asyncio.run(ensure_log(settings, bus.url))
    procs = [spawn_agent(a, settings, bus.url, None) for a in AGENTS]
    console.print(f"NATS {bus.url}; agents: {', '.join(AGENTS)} (Ctrl-C stops them)")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1.0)
        console.print("[red]an agent exited; stopping the others[/red]")
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(procs)
        bus.close()


@app.command()
def tail(
    experiment: Annotated[str | None, typer.Argument(help="Only this experiment.")] = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="Print past events first.")] = False,
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Print events as they are appended to the log."""
    settings = _settings(data_dir, work_dir, nats_url)
    configure_logging("console", "warning")
    bus = _existing_bus(settings)

    async def go() -> None:
        store = await open_store(settings, bus.url, "tail", "viewer")
        try:
            async for item in store.tail(experiment_filter(experiment) if experiment else None, from_start=from_start):
                if isinstance(item, StoredEvent):
                    env = item.envelope
                    console.print(
                        f"[dim]{item.seq:>6} {env.time:%H:%M:%S}[/dim] [cyan]{env.experiment_id}[/cyan] {describe(env)}"
                    )
                else:
                    console.print(
                        f"[dim]{item.seq:>6}[/dim] [red]unreadable message on {item.subject}: {item.reason}[/red]"
                    )
        finally:
            await store.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())


@app.command()
def export(
    experiment: str,
    out: Annotated[Path, typer.Option(help="JSON Lines file: one event envelope a line, in log order.")],
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Write an experiment's events to a file: to keep, share, or `greenai import` into another log."""

    async def write(history: History, _: EventStore) -> int:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(e.model_dump_json() + "\n" for e in history.envelopes), encoding="utf-8")
        console.print(f"{len(history.envelopes)} events of {experiment} written to {out}")
        return 0

    _on_history(_settings(None, work_dir, nats_url), experiment, "export", write)


@app.command("import")
def import_events(
    file: Annotated[Path, typer.Argument(help="A file written by `greenai export`.")],
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Append exported events to this log. Event ids are kept, so importing twice adds nothing."""
    settings = _settings(None, work_dir, nats_url)
    try:
        envelopes = [decode(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, MalformedEvent) as exc:
        console.print(f"[red]cannot import {file}:[/red] {exc}")
        raise typer.Exit(2) from exc
    bus = _existing_bus(settings, allow_start=True)

    async def go() -> int:
        store = await open_store(settings, bus.url, "import", "admin")
        try:
            present: set[str] = set()
            for exp in {e.experiment_id for e in envelopes}:
                present |= {str(e.event_id) for e in (await store.read(exp)).envelopes}
            new = 0
            for env in envelopes:
                if str(env.event_id) not in present:
                    new += 0 if (await store.append(env)).duplicate else 1
        finally:
            await store.close()
        console.print(f"{new} event(s) appended, {len(envelopes) - new} already in the log")
        return 0

    try:
        code = asyncio.run(go())
    finally:
        bus.close()
    raise typer.Exit(code)


@app.command()
def replay(
    experiment: str,
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Rebuild an experiment's folder (front, results, skill memory) from the log alone."""
    settings = _settings(data_dir, work_dir, nats_url)

    async def rebuild(history: History, store: EventStore) -> int:
        skills = skill_memory([e.envelope async for e in store.read_everything()])
        folder = write_experiment_folder(settings.experiments_dir, experiment, history.envelopes, skills)
        for bad in history.unreadable:
            console.print(f"[yellow]skipped unreadable message {bad.seq} on {bad.subject}: {bad.reason}[/yellow]")
        console.print(front_table(pareto_front(history.envelopes)))
        console.print(f"{len(history.events)} events replayed into {folder}")
        return 0

    _on_history(settings, experiment, "replay", rebuild)


@app.command()
def analyze(
    experiment: str,
    fmt: Annotated[str, typer.Option("--format", help="summary, detailed or json")] = "summary",
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Report on an experiment from the log: the front (summary), every event (detailed), or JSON."""
    if fmt not in ("summary", "detailed", "json"):
        console.print(f"[red]--format must be summary, detailed or json, not {fmt!r}[/red]")
        raise typer.Exit(2)

    async def report(history: History, _: EventStore) -> int:
        events = history.envelopes
        state, front = fold_experiment(experiment, events), pareto_front(events)
        if fmt == "json":
            print(
                json.dumps(
                    {"summary": summary(state, front), "pareto": front.model_dump(mode="json")},
                    indent=2,
                    sort_keys=True,
                )
            )
            return 0
        table = Table("episode", "status", "method", "accuracy", "ms/token", "size MiB", title=f"{experiment}")
        base = state.baseline.result
        if base is not None:
            table.add_row(
                "0",
                "evaluated",
                "baseline",
                f"{base.accuracy:.3f}",
                f"{base.latency.decode_ms_per_token:.1f}",
                f"{base.size_bytes / 2**20:.1f}",
            )
        for n, ep in sorted(state.episodes.items()):
            r = ep.evaluated
            table.add_row(
                str(n), ep.status, ep.decision.method or ep.decision.action,
                f"{r.accuracy:.3f}" if r else "-", f"{r.latency.decode_ms_per_token:.1f}" if r else "-",
                f"{r.size_bytes / 2**20:.1f}" if r else "-",
            )  # fmt: skip
        console.print(table)
        console.print(front_table(front))
        if fmt == "detailed":
            for stored in history.events:
                env = stored.envelope
                console.print(f"[dim]{stored.seq:>6} {env.time:%H:%M:%S} {env.producer}[/dim] {describe(env)}")
        return 0

    _on_history(_settings(data_dir, work_dir, nats_url), experiment, "analyze", report)


@app.command()
def experiments(data_dir: DataDir = None, work_dir: WorkDir = None, nats_url: NatsUrl = None) -> None:
    """List the experiments in the log with their status."""
    settings = _settings(data_dir, work_dir, nats_url)
    bus = _existing_bus(settings, allow_start=True)

    async def go() -> None:
        store = await open_store(settings, bus.url, "experiments", "viewer")
        from greenai.cli.listing import experiment_row, system_row
        from greenai.events.subjects import SYSTEM_EXPERIMENT

        table = Table("experiment", "model", "dataset", "status", "episodes", "events", "reason")
        try:
            names = [e for e in await store.experiments() if e != SYSTEM_EXPERIMENT]
            rows = [experiment_row(exp, await store.read(exp)) for exp in names]
            rows += [r for r in [system_row(await store.read(SYSTEM_EXPERIMENT))] if r is not None]
            for row in rows:
                table.add_row(row.experiment, row.model, row.dataset, row.status, row.episodes, row.events, row.reason)
        finally:
            await store.close()
        console.print(table)

    try:
        asyncio.run(go())
    finally:
        bus.close()


def _existing_bus(settings: Settings, allow_start: bool = False) -> Bus:
    try:
        bus = ensure_nats(settings, start=allow_start)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if bus.embedded is not None:  # a new, empty log: create the stream (as admin) before reading it
        asyncio.run(ensure_log(settings, bus.url))
    return bus


def _on_history(
    settings: Settings, experiment: str, who: str, body: Callable[[History, EventStore], Awaitable[int]]
) -> None:
    """Read one experiment from the log and hand it, with the open store, to `body`; exit with its code."""
    bus = _existing_bus(settings, allow_start=True)

    async def go() -> int:
        store = await open_store(settings, bus.url, who, "viewer")
        try:
            history = await store.read(experiment)
            if not history.events:
                console.print(f"[red]no events for experiment {experiment!r}[/red]")
                return 1
            return await body(history, store)
        finally:
            await store.close()

    try:
        code = asyncio.run(go())
    finally:
        bus.close()
    raise typer.Exit(code)


def _exit_on_sigterm() -> None:
    """SIGTERM ends `run` and `up` like Ctrl-C: through their finally blocks, which stop the agents
    and the embedded nats-server they started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def main() -> None:
    _exit_on_sigterm()
    app()
