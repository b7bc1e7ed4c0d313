"""What the coordinator checks in a run request before anything is computed.

A request can reach the bus without the CLI (any client with the `cli` identity can publish one), so
the coordinator re-checks what it owns: the model reference (an alias, a Hub id or a model under the
models dir — never an arbitrary host path), the policy and its plan, and the size of what it will
have to carry, and the benchmarks: known, an accuracy as the target, their files readable where this
machine has the data dir, task-folder Python only when trusted. The evaluation agent checks the
benchmark again on its own machine (it refuses as `invalid`), and the coordinator waits for the
baseline before its first decision, so whatever slips through still ends before any compression.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from greenai.events.experiment import RunRequested
from greenai.services.coordinator.policies.auto import POLICIES
from greenai.shared.model_io import ModelNotFoundError, hub_offline, resolve_bus_model

MAX_PLAN_EPISODES = 1000
MAX_STEPS_PER_EPISODE = 8
MAX_STEP_PARAMS_BYTES = 4096
MAX_REQUEST_BYTES = 64 * 1024  # a run request as JSON; a 1000-episode plan of small steps fits
MAX_SECONDARY = 8
MAX_CALIBRATION_SAMPLES = 4096
MAX_CALIBRATION_SEQ_LEN = 32768
MAX_TIME_BUDGET_H = 24 * 365
# a built-in benchmark name (arc_easy, bbh:date_understanding) or a user benchmark's path
BENCHMARK_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class Refused(ValueError):
    """The request cannot run; the message says why."""


def check_benchmark_reference(name: str, roots: list[Path]) -> None:
    """A built-in benchmark's name, or a user benchmark file/folder inside one of `roots`."""
    if BENCHMARK_NAME.match(name) and "/" not in name and ".." not in name:
        return
    if "\x00" in name or name.startswith("~") or "://" in name:
        raise Refused(f"benchmark {name[:200]!r} is not allowed")
    resolved = Path(name).resolve()
    allowed = [r.resolve() for r in roots]
    if not any(resolved.is_relative_to(r) for r in allowed):
        raise Refused(
            f"benchmark {name[:200]!r} is outside the allowed folders ({', '.join(map(str, allowed))}): "
            "a run may name a built-in benchmark or a user benchmark under the data or work dir"
        )


def check_limits(run: RunRequested) -> None:
    """What the schema leaves open: the request's size and the knobs that would make a job unbounded."""
    size = len(run.model_dump_json())
    if size > MAX_REQUEST_BYTES:
        raise Refused(f"the run request is {size:,} bytes as JSON; at most {MAX_REQUEST_BYTES:,} are accepted")
    if len(run.secondary) > MAX_SECONDARY:
        raise Refused(f"at most {MAX_SECONDARY} secondary benchmarks, not {len(run.secondary)}")
    if run.calibration_samples > MAX_CALIBRATION_SAMPLES:
        raise Refused(f"calibration_samples {run.calibration_samples} exceeds {MAX_CALIBRATION_SAMPLES}")
    if run.calibration_seq_len > MAX_CALIBRATION_SEQ_LEN:
        raise Refused(f"calibration_seq_len {run.calibration_seq_len} exceeds {MAX_CALIBRATION_SEQ_LEN}")
    if run.time_budget_h is not None and run.time_budget_h > MAX_TIME_BUDGET_H:
        raise Refused(f"time_budget_h {run.time_budget_h} exceeds {MAX_TIME_BUDGET_H} (a year)")


def check_benchmarks(dataset: str, secondary: list[str], data_dir: Path | None, trust_task_code: bool = False) -> None:
    """Every benchmark known, the target one bounded (an accuracy, not a perplexity), its files readable
    when this machine has the data dir, and an lm-eval task folder free of Python unless trusted. The
    CLI calls this before it logs anything; the coordinator before any compute."""
    from greenai.services.evaluation.benchmarks.auto import benchmark
    from greenai.services.evaluation.benchmarks.base import BenchmarkDataError, UnknownBenchmarkError

    for name in (dataset, *secondary):
        try:
            bench = benchmark(name, trust_task_code)
            if name == dataset and not bench.bounded:
                raise BenchmarkDataError(
                    f"{name} scores {bench.metric} (lower is better): use it as a secondary benchmark, not the target"
                )
            if data_dir is not None and not bench.self_contained and "lm_eval_task" not in bench.meta:
                try:
                    bench.load_local(data_dir)  # missing or malformed files: refused now, with file and line
                except FileNotFoundError:
                    if bench.hub is None or hub_offline():
                        raise
        except (UnknownBenchmarkError, BenchmarkDataError, FileNotFoundError, OSError) as exc:
            raise Refused(str(exc)) from exc


def admit(
    run: RunRequested, model_roots: list[Path], benchmark_roots: list[Path], data_dir: Path | None = None
) -> None:
    """Raise `Refused` with the reason when the request is malformed or impossible. The cheap checks
    first; the benchmark files (`data_dir`: this machine's copy, if any) last."""
    check_limits(run)
    try:
        resolve_bus_model(run.model, model_roots)
    except ModelNotFoundError as exc:
        raise Refused(str(exc)) from exc
    for name in (run.dataset, *run.secondary):
        check_benchmark_reference(name, benchmark_roots)
    if run.policy not in {*POLICIES, "llm"}:
        known = ", ".join(sorted([*POLICIES, "llm"]))
        raise Refused(f"unknown policy {run.policy[:100]!r}; known: {known}")
    if run.policy == "plan":
        if not run.plan:
            raise Refused("policy 'plan' needs a plan: a list of episodes, each a list of steps")
        if len(run.plan) > MAX_PLAN_EPISODES:
            raise Refused(f"a plan may hold at most {MAX_PLAN_EPISODES} episodes, not {len(run.plan)}")
        for n, steps in enumerate(run.plan, 1):
            if not steps or len(steps) > MAX_STEPS_PER_EPISODE:
                raise Refused(f"plan episode {n}: 1 to {MAX_STEPS_PER_EPISODE} steps, not {len(steps)}")
            for step in steps:
                if len(json.dumps(step.params, default=str)) > MAX_STEP_PARAMS_BYTES:
                    raise Refused(f"plan episode {n}: a step's params exceed {MAX_STEP_PARAMS_BYTES} bytes")
    elif run.plan is not None:
        raise Refused(f"a plan is only taken by policy 'plan', not {run.policy!r}")
    check_benchmarks(run.dataset, list(run.secondary), data_dir, run.trust_task_code)
