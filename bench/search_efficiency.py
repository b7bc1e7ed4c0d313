"""How fast each search policy finds the Pareto front, replayed on a recorded landscape.

The landscape is our own data: a real `greenai run --space cpu-fast --policy plan` of every one of
the 42 configurations of the `cpu-fast` space on SmolLM2-135M-Instruct (ARC-Easy, 200 items;
decode latency and size measured on this 2-core CPU), exported with `greenai export` to
`bench/landscape/events.jsonl`. Each policy then runs as in a real experiment — the coordinator's
own code deciding from the folded event history — but every outcome is looked up in the landscape
instead of computed, for many seeds.

Printed per policy: mean hypervolume after k evaluations (accuracy up, ms/token down, MiB down;
latency and size divided by the landscape's worst; the reference point is chance accuracy and 110 %
of the worst latency and size), the evaluations needed to reach 95 % of the
hypervolume of the whole landscape (median over seeds, and how many seeds got there), the mean of the
normalised hypervolume over the whole budget (anytime quality), and the share
of catastrophic configurations among the first 20 evaluations.

    python bench/search_efficiency.py [--seeds 20] [--html build/search_efficiency.html]
    python bench/search_efficiency.py --smoke   # seconds: 1 seed, 6 evaluations a policy, missing counted as failed
    python bench/search_efficiency.py --partial --llm local [--llm-seeds 3] [--budget 20]  # + the llm row
    python bench/search_efficiency.py --partial --llm-recorded build/search_efficiency_llm.jsonl  # offline again

The llm row replays offline as recorded on this machine (the prompt names the hardware, so elsewhere
the recording holds no answer and the fallback decides): `--partial --llm-recorded
bench/landscape/llm_answers_smollm2.jsonl --llm-seeds 3 --budget 20 --seeds 20`. The landscape
predates the catalogue-built space (hence --partial): an LLM choice it lacks counts as a failure.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from greenai.events import decode, new_event
from greenai.events.experiment import EpisodeDecided, RunRequested, SpecInferred, steps_key
from greenai.events.jobs import ArtifactRef, EvaluateRequested, JobFailed
from greenai.events.results import EvaluateCompleted
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState, apply, fold_experiment
from greenai.projections.pareto import hypervolume
from greenai.projections.skills import skill_memory
from greenai.services.coordinator.policies.auto import get_policy
from greenai.services.coordinator.space import Space, configurations
from greenai.shared.config import Settings

LANDSCAPE = Path(__file__).parent / "landscape" / "events.jsonl"
POLICIES = ["random", "tpe", "tpe-prior", "nsga2", "bandit"]
CHECKPOINTS = [5, 10, 15, 20, 30, 42]
CHANCE = 0.25  # ARC-Easy is 4-way


def agent_offers() -> Offers:
    """The catalogue the built-in agents announce (their own entries), as the coordinator would see it."""
    from greenai.services.lora.catalogue import offers as lora
    from greenai.services.pruning.catalogue import offers as prune
    from greenai.services.quantization.methods.auto import METHODS

    methods = [*(m.catalogue_entry() for m in METHODS.values()), *prune(3.0), *lora()]
    return Offers(tuple(sorted(methods, key=lambda m: (m.kind, m.name))))


OFFERS = agent_offers()


@dataclass(frozen=True)
class Landscape:
    run: RunRequested
    spec: SpecInferred
    baseline: EvaluateCompleted
    outcomes: dict[str, EvaluateCompleted | None]  # steps key -> result, None for a failed configuration
    max_ms: float
    max_mib: float

    def point(self, r: EvaluateCompleted) -> tuple[float, float, float]:
        return (1.0 - r.accuracy, r.latency.decode_ms_per_token / self.max_ms, r.size_bytes / 2**20 / self.max_mib)

    @property
    def reference(self) -> tuple[float, float, float]:
        # accuracy at chance (ARC-Easy is 4-way) is worth nothing: a configuration at or below it adds no
        # volume however small or fast it is; latency and size up to 110 % of the landscape's worst
        return (1.0 - CHANCE, 1.1, 1.1)

    def volume(self, results: list[EvaluateCompleted]) -> float:
        return hypervolume([self.point(r) for r in results], self.reference)


def load_landscape(path: Path) -> Landscape:
    envelopes = [decode(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    state = fold_experiment(envelopes[0].experiment_id, envelopes)
    assert state.run is not None and state.baseline.result is not None, f"{path} holds no finished baseline"
    spec = next(e.data for e in envelopes if isinstance(e.data, SpecInferred))
    outcomes: dict[str, EvaluateCompleted | None] = {}
    for ep in state.episodes.values():
        if ep.finished and ep.decision.action == "compress":
            r, final = ep.evaluated, ep.final_artifact
            if r is not None and final is not None:
                # size as the compression agent recorded it when it wrote the artifact (one evaluation in the
                # recording reused a cached result whose size was measured after its folder was deleted: 0)
                r = r.model_copy(update={"size_bytes": final.artifact.bytes})
            outcomes[steps_key(ep.decision.steps)] = r
    results = [state.baseline.result, *[r for r in outcomes.values() if r is not None]]
    return Landscape(
        state.run, spec, state.baseline.result, outcomes,
        max(r.latency.decode_ms_per_token for r in results), max(r.size_bytes / 2**20 for r in results),
    )  # fmt: skip


NOTES: list[object] = []  # the llm policy's calls and fallbacks, in order (bench/search_llm.py)
OFF_LANDSCAPE: list[str] = []  # configurations a policy chose that the landscape lacks
LLM_RECORD = Path("build/search_efficiency_llm.jsonl")


def replay_policy(
    policy_name: str, seed: int, land: Landscape, budget: int, settings: Settings | None = None
) -> list[EvaluateCompleted | None]:
    """The policy's evaluations in order, each looked up in the landscape (None: a failed configuration)."""
    exp = f"replay-{policy_name}-{seed}"
    run = land.run.model_copy(update={"policy": policy_name, "seed": seed, "plan": None, "space": "cpu-fast"})
    state = ExperimentState(exp)
    skills = skill_memory([])
    policy = get_policy(policy_name, settings)

    def add(data: object, key: str) -> None:
        apply(state, new_event(exp, data, producer="bench", key=key))  # type: ignore[arg-type]

    add(run, "run")
    add(land.spec, "spec")
    add(land.baseline, "baseline")
    seen: list[EvaluateCompleted | None] = []
    for n in range(1, budget + 1):
        decision = policy.decide(state, skills, OFFERS)
        NOTES.extend(decision.notes)
        if decision.action == "end":
            break
        add(EpisodeDecided(episode=n, action="compress", steps=list(decision.steps), policy=policy_name,
                           rationale=decision.rationale, search_point=decision.search_point,
                           search_space=decision.search_space), f"ep{n}")  # fmt: skip
        outcome = land.outcomes.get(steps_key(decision.steps))  # absent only from a partial landscape
        if steps_key(decision.steps) not in land.outcomes:
            OFF_LANDSCAPE.append(f"{policy_name}:{steps_key(decision.steps)}")
        job = f"{exp}-ep{n}-evaluate"
        add(EvaluateRequested(job_id=job, episode=n, target=ArtifactRef(kind="base", model="m"), task="arc_easy"),
            f"ep{n}-req")  # fmt: skip
        if outcome is None:
            add(JobFailed(job_id=job, kind="evaluate", episode=n, agent="bench", attempt=1, final=True,
                          reason="error", error_type="Recorded", message="failed in the landscape"), f"ep{n}-f")  # fmt: skip
        else:
            add(outcome.model_copy(update={"episode": n, "job_id": job}), f"ep{n}-done")
        seen.append(outcome)
    return seen


def curve(land: Landscape, seen: list[EvaluateCompleted | None], budget: int) -> list[float]:
    """Hypervolume after 0..budget evaluations (the baseline is always measured first)."""
    results = [land.baseline]
    out = [land.volume(results)]
    for k in range(budget):
        r = seen[k] if k < len(seen) else None
        if r is not None:
            results.append(r)
        out.append(land.volume(results))
    return out


def main(
    seeds: int, html: Path | None, partial: bool = False, budget_cap: int | None = None,
    llm: Settings | None = None, llm_seeds: int = 3,
) -> None:  # fmt: skip
    console = Console(width=170)
    land = load_landscape(LANDSCAPE)
    space = configurations(Space(OFFERS, "cpu-fast"))
    missing = [k for k in (steps_key(c.steps) for c in space) if k not in land.outcomes]
    if missing and not partial:
        raise SystemExit(
            f"the landscape lacks {len(missing)} of the {len(space)} configurations of today's cpu-fast space (the agents' "
            f"announced grids), e.g. {missing[0]}: record a new landscape, or pass --partial to count them as failed"
        )
    budget = min(len(space), budget_cap or len(space))
    checkpoints = [k for k in CHECKPOINTS if k <= budget]
    best = land.volume([land.baseline, *[r for r in land.outcomes.values() if r is not None]])
    catastrophic = CHANCE + 0.5 * (land.baseline.accuracy - CHANCE)
    failed = sum(1 for r in land.outcomes.values() if r is None)
    console.print(
        f"landscape: {len(land.outcomes)} configurations ({failed} failed) + baseline "
        f"(acc {land.baseline.accuracy:.3f}); attainable hypervolume {best:.4f}; "
        f"catastrophic: accuracy < {catastrophic:.3f}"
    )
    table = Table(title=f"search efficiency on the recorded SmolLM2-135M landscape ({seeds} seeds each)")
    for col in ["policy", *[f"HV@{k}" for k in checkpoints], "HV area", "evals to 95 % (median)", "reached",
                "catastrophic@20", "s/decision"]:  # fmt: skip
        table.add_column(col, justify="right")
    curves: dict[str, list[float]] = {}
    medians: dict[str, float] = {}
    areas: dict[str, float] = {}
    decided: dict[str, int] = {}
    for name in [*POLICIES, *(["llm"] if llm else [])]:
        t0 = time.perf_counter()
        n_seeds = llm_seeds if name == "llm" else seeds
        runs = [replay_policy(name, seed, land, budget, llm) for seed in range(n_seeds)]
        decided[name] = sum(len(r) for r in runs)
        per_decision = (time.perf_counter() - t0) / max(1, decided[name])
        cs = [curve(land, r, budget) for r in runs]
        mean = [statistics.fmean(c[k] for c in cs) for k in range(budget + 1)]
        curves[name] = [v / best for v in mean]
        areas[name] = statistics.fmean(curves[name][1:])  # anytime quality: mean over 1..budget evaluations
        hits = [next((k for k, v in enumerate(c) if v >= 0.95 * best), None) for c in cs]
        reached = [h for h in hits if h is not None]
        medians[name] = statistics.median([h if h is not None else budget + 1 for h in hits])
        bad = [sum(1 for r in run[:20] if r is None or r.accuracy < catastrophic) / min(20, len(run)) for run in runs]
        table.add_row(
            name, *[f"{mean[k] / best:.3f}" for k in checkpoints], f"{areas[name]:.3f}",
            f"{medians[name]:.0f}" if medians[name] <= budget else f">{budget}", f"{len(reached)}/{n_seeds}",
            f"{statistics.fmean(bad):.0%}", f"{per_decision:.3f}",
        )  # fmt: skip
    console.print(table)
    if llm is not None:
        from search_llm import invalid_reasons, stats_table, write_recording

        off = sum(1 for k in OFF_LANDSCAPE if k.startswith("llm:"))
        console.print(stats_table(NOTES, decided["llm"], off, llm.llm_recorded))  # type: ignore[arg-type]
        for line in invalid_reasons(NOTES):  # type: ignore[arg-type]
            console.print(f"  refused: {line}")
        if llm.llm_recorded is None:
            write_recording(LLM_RECORD, NOTES)  # type: ignore[arg-type]
            console.print(f"answers recorded to {LLM_RECORD}: replay with --llm-recorded {LLM_RECORD}")
    winner = min((n for n in POLICIES if n != "random"), key=lambda n: (medians[n], -areas[n]))
    ratio = medians[winner] / medians["random"]
    verdict = "met" if ratio <= 0.5 else "NOT met"
    console.print(
        f"best policy: {winner}, {medians[winner]:.0f} evaluations to 95 % vs random's {medians['random']:.0f} "
        f"({ratio:.0%} of random's; target ≤ 50 %: {verdict})"
    )
    if html is not None:
        import plotly.graph_objects as go

        fig = go.Figure([go.Scatter(x=list(range(budget + 1)), y=c, name=n, mode="lines") for n, c in curves.items()])
        fig.add_hline(y=0.95, line_dash="dot", annotation_text="95 % of attainable")
        fig.update_layout(title="Mean hypervolume vs evaluations", xaxis_title="evaluations",
                          yaxis_title="hypervolume / attainable")  # fmt: skip
        html.parent.mkdir(parents=True, exist_ok=True)
        fig.write_html(html, include_plotlyjs=True)
        console.print(f"chart: {html}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--html", type=Path, default=None)
    parser.add_argument("--landscape", type=Path, default=LANDSCAPE)
    parser.add_argument(
        "--partial", action="store_true", help="allow a landscape still being recorded (missing: failed)"
    )
    parser.add_argument("--smoke", action="store_true", help="1 seed, 6 evaluations a policy; implies --partial")
    parser.add_argument("--budget", type=int, default=None, help="evaluations per run (default: the whole space)")
    parser.add_argument("--llm", default=None, help="add the llm row: 'local' (llama.cpp server) or a base URL")
    parser.add_argument("--llm-gguf", default="smollm2-135m", help="the GGUF --llm local serves")
    parser.add_argument("--llm-model", default=None, help="model name sent to the endpoint")
    parser.add_argument("--llm-seeds", type=int, default=3, help="llm runs (each a fresh search)")
    parser.add_argument("--llm-record", type=Path, default=Path("build/search_efficiency_llm.jsonl"))
    parser.add_argument("--llm-recorded", type=Path, default=None, help="replay these answers; no server")
    args = parser.parse_args()
    LANDSCAPE = args.landscape
    LLM_RECORD = args.llm_record
    if args.llm or args.llm_recorded:
        from search_llm import llm_settings

        with llm_settings(args.llm, args.llm_gguf, args.llm_recorded, args.llm_model) as settings:
            main(args.seeds, args.html, args.partial or args.smoke, 6 if args.smoke else args.budget, settings,
                 1 if args.smoke else args.llm_seeds)  # fmt: skip
    elif args.smoke:
        main(1, args.html, partial=True, budget_cap=6)
    else:
        main(args.seeds, args.html, args.partial, args.budget)
