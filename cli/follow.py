"""Following a run live: one line per event, a progress bar over episodes, the person's review of
each proposal when the run is interactive, and an early end when an agent dies."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import subprocess

from pydantic import TypeAdapter, ValidationError
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.prompt import Prompt

from greenai.cli.options import console
from greenai.cli.render import describe
from greenai.events import new_event
from greenai.events.experiment import (
    DecisionProposed,
    DecisionReviewed,
    EpisodeDecided,
    ExperimentCompleted,
    ExperimentFailed,
    Step,
)
from greenai.events.results import EvaluateCompleted
from greenai.events.subjects import experiment_filter
from greenai.shared.eventstore import EventStore, StoredEvent

Agents = dict[str, subprocess.Popen[bytes]]  # the agent processes this run started, by name


def connection_status(state: str, outage_s: float | None) -> None:
    """One line per change of the connection, instead of the client's tracebacks."""
    if state == "disconnected":
        console.print("[yellow]NATS unreachable, retrying…[/yellow]")
    elif state == "reconnected":
        console.print(f"[green]NATS reconnected after {outage_s or 0.0:.1f} s[/green]")


def ask_review(proposal: DecisionProposed) -> DecisionReviewed:
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


async def follow(store: EventStore, experiment_id: str, episodes: int, procs: Agents, interactive: bool = False) -> str:
    """Print the run's events until it completes or fails (or an agent we started dies); returns the outcome:
    "completed", "failed" or "agents died"."""
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
                    review = await asyncio.to_thread(ask_review, data)
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
