"""`greenai run`: check and stage the request, log it, start the agents, follow the run to its front."""

from __future__ import annotations

import asyncio
import re
import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError

from greenai.cli.agents import AGENTS, spawn_agent, stop_all
from greenai.cli.energy_report import EnergyAxis, print_front
from greenai.cli.follow import connection_status, follow
from greenai.cli.options import DataDir, NatsUrl, WorkDir, console, settings_or_exit
from greenai.cli.staging import stage_benchmark, stage_model
from greenai.events import new_event
from greenai.events.experiment import RunRequested, Step
from greenai.events.subjects import check_experiment_id
from greenai.projections.skills import skill_memory
from greenai.shared.bus import Bus, ensure_log, ensure_nats, open_store
from greenai.shared.config import Settings
from greenai.shared.eventstore import ConcurrencyError, NatsUnavailable
from greenai.shared.reports.experiment_folder import write_experiment_folder


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
            help="llm, tpe, tpe-prior, nsga2, random, bandit, grid, or plan (with --plan). "
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
    energy_axis: EnergyAxis = False,
) -> None:
    """Request an experiment, follow it episode by episode, then show the Pareto front."""
    settings = settings_or_exit(data_dir, work_dir, nats_url)
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
        code = asyncio.run(_run(settings, bus, experiment_id, request, procs, energy_axis))
    except NatsUnavailable as exc:
        console.print(f"[red]{exc}[/red]")
        code = 1
    finally:
        stop_all(list(procs.values()))
        bus.close()
    raise typer.Exit(code)


async def _run(
    settings: Settings,
    bus: Bus,
    experiment_id: str,
    request: RunRequested,
    procs: dict[str, subprocess.Popen[bytes]],
    energy_axis: bool = False,
) -> int:
    store = await open_store(settings, bus.url, "cli", "cli")
    store.watch.on_change(connection_status)
    try:
        event = new_event(experiment_id, request, producer="cli", key="run")
        try:
            await store.append(event, expected_last_seq=0)
        except ConcurrencyError:
            console.print(f"[red]experiment {experiment_id} already exists; pick another --name[/red]")
            return 2
        console.print(f"experiment [bold]{experiment_id}[/bold] requested (NATS {bus.url})")
        outcome = await follow(store, experiment_id, request.episodes, procs, request.interactive)
        history = await store.read(experiment_id)
        skills = skill_memory([e.envelope async for e in store.read_everything()])
        folder = write_experiment_folder(settings.experiments_dir, experiment_id, history.envelopes, skills)
        print_front(history.envelopes, energy_axis)
        console.print(f"experiment folder: {folder}")
        return 0 if outcome == "completed" else 1
    finally:
        await store.close()
