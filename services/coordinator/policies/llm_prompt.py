"""What the LLM policy asks: a bounded prompt, and the JSON schema its answer must follow.

The prompt is built from the folded experiment only (no clock, no randomness), so the same history
gives the same bytes: recorded answers can be served again by the conversation's hash. It stays
bounded however long the run: the last `RECENT` episodes in full, older ones summarised per method
chain, the Pareto front capped at `FRONT_ROWS` rows. The schema names only the methods the live
agents offer (an `enum` per step), so a server that constrains decoding to it cannot name another.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from greenai.events.experiment import ModelSpec, Step
from greenai.events.results import EvaluateCompleted
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import EpisodeState, ExperimentState
from greenai.projections.pareto import Candidate, non_dominated
from greenai.projections.skills import SkillMemory

RECENT = 8  # episodes shown one per line; older ones are summarised
FRONT_ROWS = 10
SUMMARY_ROWS = 20
SKILL_ROWS = 12
MAX_STEPS = 3
RATIONALE_CHARS = 200  # a small model rambles: the answer must end within llm_max_tokens

SYSTEM = (
    "You are an expert in compressing large language models (quantization, pruning, recovery by fine-tuning "
    "or distillation). Each episode you choose ONE next experiment. Answer with a single JSON object and nothing "
    'else, of the form {"action": "compress"|"end", "steps": [{"kind": str, "method": str, "params": {...}}], '
    '"rationale": str}: one step, or a pipeline of steps run in order (compression first, recovery last). Use '
    "only the methods listed under METHODS (what the agents on the bus offer now), with their parameters. "
    'Do not repeat an experiment already in the history. Choose "end" only when nothing promising is left.'
)

# JSON-schema keywords kept from an announced parameter schema: what constrains a value, not its prose
_KEEP = {"type", "enum", "const", "properties", "additionalProperties", "anyOf", "items", "minimum", "maximum"}


def applicable(offers: Offers, spec: ModelSpec | None, space: str = "full") -> list[Any]:
    """The offered methods this model's family may use (all of them when the family is unknown); in the
    cpu-fast space only those with fast grids, as the search policies see it (coordinator/space.py)."""
    fits = [m for m in offers.methods if spec is None or m.families is None or spec.family in m.families]
    if space == "cpu-fast":
        fits = [m for m in fits if m.fast_search]
    return fits or list(offers.methods)


def _clean(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _clean(v) for k, v in schema.items() if k in _KEEP}
    if isinstance(schema, list):
        return [_clean(v) for v in schema]
    return schema


def _params_schema(raw: dict[str, Any]) -> dict[str, Any]:
    props = {k: _clean(v) for k, v in raw.get("properties", {}).items()}
    return {"type": "object", "properties": props, "additionalProperties": False}


def _grid_schema(grid: dict[str, list[Any]]) -> dict[str, Any]:
    """One of a method's fast grids: each of its parameters set, to one of the grid's values."""
    props = {k: {"enum": list(v)} for k, v in grid.items()}
    return {"type": "object", "properties": props, "required": sorted(props), "additionalProperties": False}


def _shapes(offers: Offers, kinds: set[str]) -> list[list[str]]:
    """Pipeline shapes as the search space has them (coordinator/space.py): one compression kind, two in
    pipeline order, either followed by one recovery kind; each kind at most once."""
    compress = [k for k in offers.kinds("compress") if k in kinds]
    recover = [k for k in offers.kinds("recover") if k in kinds]
    heads = [[k] for k in compress] + [[a, b] for i, a in enumerate(compress) for b in compress[i + 1 :]]
    return [h + tail for h in heads for tail in ([], *([r] for r in recover)) if len(h + tail) <= MAX_STEPS]


def answer_schema(offers: Offers, spec: ModelSpec | None, space: str = "full") -> dict[str, Any]:
    """The decision's JSON schema: the steps one of the pipeline shapes, each step one of the offered
    (kind, method) pairs with that method's own parameters (in the cpu-fast space: one of its fast grids).
    At least one step, even with `end` (where it is ignored): a small model given the choice answers
    `compress` with no steps, or the same kind twice."""
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in applicable(offers, spec, space):
        grids = (
            [_grid_schema(g) for g in m.fast_search or []] if space == "cpu-fast" else [_params_schema(m.params_schema)]
        )
        for params in grids:
            by_kind[m.kind].append({
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": [m.kind]},
                    "method": {"type": "string", "enum": [m.name]},
                    "params": params,
                },
                "required": ["kind", "method", "params"],
                "additionalProperties": False,
            })  # fmt: skip
    shapes = [
        {"type": "array", "prefixItems": [{"anyOf": by_kind[k]} for k in shape], "minItems": len(shape),
         "maxItems": len(shape)}
        for shape in _shapes(offers, set(by_kind))
    ]  # fmt: skip
    steps: dict[str, Any] = {"anyOf": shapes} if shapes else {"type": "array", "minItems": 1, "maxItems": MAX_STEPS}
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["compress", "end"]},
            "steps": steps,
            "rationale": {"type": "string", "minLength": 1, "maxLength": RATIONALE_CHARS},
        },
        "required": ["action", "steps", "rationale"],
        "additionalProperties": False,
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def chain(steps: list[Step] | tuple[Step, ...]) -> str:
    return " -> ".join(f"{s.kind}:{s.method}" for s in steps) or "end"


def config(steps: list[Step] | tuple[Step, ...]) -> str:
    parts = [
        f"{s.kind}:{s.method}"
        + ("(" + ",".join(f"{k}={v}" for k, v in sorted(s.params.items())) + ")" if s.params else "")
        for s in steps
    ]
    return " -> ".join(parts) or "end"


def _row(label: str, r: EvaluateCompleted) -> str:
    return (
        f"{label} | acc {_fmt(r.accuracy)} | {_fmt(r.latency.decode_ms_per_token, 2)} ms/tok | "
        f"{_fmt(r.size_bytes / 2**20, 1)} MiB"
    )


def _candidate(n: int, r: EvaluateCompleted) -> Candidate:
    return Candidate(
        experiment_id="", episode=n, method="", params={}, task=r.task, accuracy=r.accuracy, ci_low=r.ci_low,
        ci_high=r.ci_high, n=r.n, latency_ms_per_token=r.latency.decode_ms_per_token, peak_rss_mb=r.peak_rss_mb,
        size_bytes=r.size_bytes, energy_j=r.energy.joules, energy_mode=r.energy.mode,
    )  # fmt: skip


def front_table(state: ExperimentState) -> list[str]:
    """The current Pareto front (projections/pareto.py's dominance), one line per point, at most FRONT_ROWS:
    the most accurate first."""
    results = {0: state.baseline.result} if state.baseline.result is not None else {}
    results |= {n: ep.evaluated for n, ep in state.episodes.items() if ep.evaluated is not None}
    front = non_dominated([_candidate(n, r) for n, r in sorted(results.items())])
    front.sort(key=lambda c: (-c.accuracy, c.episode))
    lines = []
    for c in front[:FRONT_ROWS]:
        label = "baseline" if c.episode == 0 else f"ep{c.episode} {config(state.episodes[c.episode].decision.steps)}"
        lines.append(_row(label, results[c.episode]))
    if len(front) > FRONT_ROWS:
        lines.append(f"(+{len(front) - FRONT_ROWS} more front points)")
    return lines


def _episode_line(ep: EpisodeState) -> str:
    label = f"ep{ep.number} {config(ep.decision.steps)}"
    if ep.evaluated is not None:
        return _row(label, ep.evaluated)
    if ep.failure is not None:
        return f"{label} | FAILED: {ep.failure.message[:120]}"
    return f"{label} | {ep.status}"


def history_lines(state: ExperimentState) -> list[str]:
    """Recent episodes one per line; older ones grouped by method chain: how often tried, failed, best."""
    episodes = sorted(state.episodes.values(), key=lambda e: e.number)
    older, recent = episodes[:-RECENT], episodes[-RECENT:]
    lines: list[str] = []
    if older:
        groups: dict[str, list[EpisodeState]] = defaultdict(list)
        for ep in older:
            groups[chain(ep.decision.steps)].append(ep)
        ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        lines.append(f"episodes 1-{older[-1].number}, summarised per method chain:")
        for name, eps in ranked[:SUMMARY_ROWS]:
            done = [e.evaluated for e in eps if e.evaluated is not None]
            failed = sum(1 for e in eps if e.failure is not None)
            best = max(done, key=lambda r: r.accuracy) if done else None
            tried = sorted({config(e.decision.steps) for e in eps})
            shown = "; ".join(tried[:3]) + (f"; +{len(tried) - 3} more" if len(tried) > 3 else "")
            lines.append(
                f"  {name}: {len(eps)} tried, {failed} failed"
                + (f", best acc {_fmt(best.accuracy)} ({_fmt(best.size_bytes / 2**20, 1)} MiB)" if best else "")
                + f" [{shown}]"
            )
        if len(ranked) > SUMMARY_ROWS:
            lines.append(f"  (+{len(ranked) - SUMMARY_ROWS} more method chains)")
    lines += [_episode_line(ep) for ep in recent]
    return lines


def method_lines(offers: Offers, spec: ModelSpec | None, space: str = "full") -> list[str]:
    """The catalogue as the LLM sees it: kind, name, what it does, each parameter's type, default and
    range or choices, and the values its agent suggests (in the cpu-fast space: the only values allowed)."""
    lines = []
    for m in applicable(offers, spec, space):
        if space == "cpu-fast":
            grids = "; ".join(
                ",".join(f"{k} in {vs}" for k, vs in g.items()) or "no parameters" for g in m.fast_search or []
            )
            lines.append(f"{m.kind}:{m.name} ({m.stage}) {m.summary[:100]} | params (set all of one group): {grids}")
            continue
        params = []
        for k, v in list(m.params_schema.get("properties", {}).items())[:10]:
            choice = v.get("enum") or ([v["const"]] if "const" in v else None)
            low = v.get("minimum", v.get("exclusiveMinimum"))
            high = v.get("maximum", v.get("exclusiveMaximum"))
            shown = f"{k}:{v.get('type', 'any')}={v.get('default')}"
            if choice:
                shown += f" in {choice}"
            elif low is not None and high is not None:
                shown += f" in {_fmt(low)}..{_fmt(high)}"
            elif low is not None or high is not None:
                shown += f" {'>=' if low is not None else '<='}{_fmt(low if low is not None else high)}"
            params.append(shown)
        useful = "; ".join(",".join(f"{k}={vs}" for k, vs in g.items()) for g in m.search[:3])
        lines.append(f"{m.kind}:{m.name} ({m.stage}) {m.summary[:100]} | params {', '.join(params) or 'none'}"
                     + (f" | try {useful}" if useful else ""))  # fmt: skip
    return lines


def build_prompt(
    state: ExperimentState, skills: SkillMemory, hardware: dict[str, Any], offers: Offers
) -> list[dict[str, str]]:
    run, spec = state.run, state.spec
    assert run is not None
    model = (
        f"{spec.model} ({spec.architecture}, family {spec.family}, {spec.num_parameters or '?'} params, "
        f"{spec.num_layers} layers, hidden {spec.hidden_size}, mlp {spec.intermediate_size}, dtype {spec.dtype})"
        if spec
        else run.model
    )
    skill_rows = [
        f"{s.method} {s.params}: {s.trials} trials, {s.failures} failed, accuracy kept {_fmt(s.mean_accuracy_retained)}"
        f", size ratio {_fmt(s.mean_size_ratio)}"
        for s in skills.for_family(spec.family if spec else "")[:SKILL_ROWS]
    ]
    base = state.baseline.result
    # what changes least comes first: a server that caches the prompt's prefix re-reads only the tail
    sections = [
        f"MODEL: {model}",
        f"HARDWARE: {', '.join(f'{k}={v}' for k, v in hardware.items())}",
        f"OBJECTIVE: {run.objective}; benchmark {run.dataset}"
        + (f" ({run.limit} items per evaluation)" if run.limit else ""),
        "METHODS (kind:method):",
        *[f"  {x}" for x in method_lines(offers, spec, run.space)],
        "SKILL MEMORY (earlier experiments on this family):",
        *([f"  {x}" for x in skill_rows] or ["  none"]),
        "BASELINE: " + (_row("uncompressed", base) if base else "not measured"),
        "PARETO FRONT (not dominated on accuracy, latency, memory, size, energy):",
        *[f"  {x}" for x in front_table(state)],
        "HISTORY:",
        *([f"  {x}" for x in history_lines(state)] or ["  none yet"]),
        f"BUDGET: {run.episodes - state.decided} of {run.episodes} episodes left"
        + (f"; time budget {run.time_budget_h} h" if run.time_budget_h else ""),
    ]
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "\n".join(sections) + "\nYour JSON answer:"},
    ]
