"""Reading the log from the terminal: `greenai tail`, `replay`, `analyze` and `experiments`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

import typer
from rich.table import Table

from greenai.cli.energy_report import EnergyAxis, print_front
from greenai.cli.log_access import existing_bus, on_history
from greenai.cli.options import DataDir, NatsUrl, WorkDir, console, settings_or_exit
from greenai.cli.render import describe
from greenai.events.subjects import experiment_filter
from greenai.projections.break_even import break_even
from greenai.projections.experiment import fold_experiment
from greenai.projections.pareto import pareto_front
from greenai.projections.skills import skill_memory
from greenai.shared.bus import open_store
from greenai.shared.eventstore import EventStore, History, StoredEvent
from greenai.shared.logging import configure_logging
from greenai.shared.reports.experiment_folder import summary, write_experiment_folder


def tail(
    experiment: Annotated[str | None, typer.Argument(help="Only this experiment.")] = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="Print past events first.")] = False,
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
) -> None:
    """Print events as they are appended to the log."""
    settings = settings_or_exit(data_dir, work_dir, nats_url)
    configure_logging("console", "warning")
    bus = existing_bus(settings)

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


def replay(
    experiment: str,
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
    energy_axis: EnergyAxis = False,
) -> None:
    """Rebuild an experiment's folder (front, results, skill memory) from the log alone."""
    settings = settings_or_exit(data_dir, work_dir, nats_url)

    async def rebuild(history: History, store: EventStore) -> int:
        skills = skill_memory([e.envelope async for e in store.read_everything()])
        folder = write_experiment_folder(settings.experiments_dir, experiment, history.envelopes, skills)
        for bad in history.unreadable:
            console.print(f"[yellow]skipped unreadable message {bad.seq} on {bad.subject}: {bad.reason}[/yellow]")
        print_front(history.envelopes, energy_axis)
        console.print(f"{len(history.events)} events replayed into {folder}")
        return 0

    on_history(settings, experiment, "replay", rebuild)


def analyze(
    experiment: str,
    fmt: Annotated[str, typer.Option("--format", help="summary, detailed or json")] = "summary",
    data_dir: DataDir = None,
    work_dir: WorkDir = None,
    nats_url: NatsUrl = None,
    energy_axis: EnergyAxis = False,
) -> None:
    """Report on an experiment from the log: the front (summary), every event (detailed), or JSON."""
    if fmt not in ("summary", "detailed", "json"):
        console.print(f"[red]--format must be summary, detailed or json, not {fmt!r}[/red]")
        raise typer.Exit(2)

    async def report(history: History, _: EventStore) -> int:
        events = history.envelopes
        state, front = fold_experiment(experiment, events), pareto_front(events, True if energy_axis else None)
        if fmt == "json":
            keys = {(c.experiment_id, c.episode) for c in front.front if c.episode != 0}
            print(
                json.dumps(
                    {
                        "summary": summary(state, front),
                        "pareto": front.model_dump(mode="json"),
                        "break_even": [r.model_dump(mode="json") for r in break_even(events, keys)],
                    },
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
        print_front(events, energy_axis)
        if fmt == "detailed":
            for stored in history.events:
                env = stored.envelope
                console.print(f"[dim]{stored.seq:>6} {env.time:%H:%M:%S} {env.producer}[/dim] {describe(env)}")
        return 0

    on_history(settings_or_exit(data_dir, work_dir, nats_url), experiment, "analyze", report)


def experiments(data_dir: DataDir = None, work_dir: WorkDir = None, nats_url: NatsUrl = None) -> None:
    """List the experiments in the log with their status."""
    settings = settings_or_exit(data_dir, work_dir, nats_url)
    bus = existing_bus(settings, allow_start=True)

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
