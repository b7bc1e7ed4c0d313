"""The energy break-even table of a run's front, with every figure labelled by how it was obtained."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Table

from greenai.cli.options import console
from greenai.cli.render import front_table
from greenai.events import Envelope
from greenai.projections.break_even import BreakEven, break_even
from greenai.projections.pareto import ParetoFront, pareto_front

EnergyAxis = Annotated[
    bool,
    typer.Option(
        "--energy-axis",
        help="Make energy an axis of the front even when only estimated (default: only when a hardware "
        "counter, RAPL or NVML, measured it).",
    ),
]

EXPLAIN = (
    "spent: energy of every compression step's job; saved: the baseline's energy per 1,000 generated tokens "
    "minus the candidate's (mean power over its latency runs x ms/token)"
)


def tokens_text(tokens: float) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if tokens >= scale:
            return f"{tokens / scale:.1f} {unit} tokens"
    return f"{tokens:.0f} tokens"


def _joules(value: float | None, mode: str) -> str:
    """A figure with its label beside it: an estimate never passes for a measurement."""
    if value is None:
        return "unknown"
    return f"{value:,.1f} J" + ("" if mode == "measured" else f" ({mode})")


def pays_back_text(row: BreakEven) -> str:
    if row.pays_back is None:
        return "unknown"
    if not row.pays_back or row.tokens is None:
        return "never"
    return f"after {tokens_text(row.tokens)}" + ("" if row.mode == "measured" else f" ({row.mode})")


def break_even_table(rows: Sequence[BreakEven]) -> Table:
    table = Table(title="Energy break-even of the front's compressed candidates", caption=EXPLAIN)
    for col in ("episode", "pipeline", "spent", "baseline J/1k tok", "candidate J/1k tok", "saved J/1k tok",
                "pays back", "how obtained"):  # fmt: skip
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.episode), r.pipeline, _joules(r.spent_j, r.spent_mode),
            _joules(r.baseline_j_per_1k, r.per_token_mode), _joules(r.candidate_j_per_1k, r.per_token_mode),
            _joules(r.saved_j_per_1k, r.per_token_mode), pays_back_text(r),
            r.mode + (f": {r.note}" if r.note else ""),
        )  # fmt: skip
    return table


def front_break_even(events: Sequence[Envelope], front: ParetoFront) -> Table | None:
    """The table for the front's compressed candidates; None when the front has none."""
    keys = {(c.experiment_id, c.episode) for c in front.front if c.episode != 0}
    return break_even_table(break_even(events, keys)) if keys else None


def print_front(events: Sequence[Envelope], energy_axis: bool = False) -> ParetoFront:
    """The front (energy an axis only where measured, or forced) and its break-even table."""
    front = pareto_front(events, energy_axis=True if energy_axis else None)
    console.print(front_table(front))
    table = front_break_even(events, front)
    if table is not None:
        console.print(table)
    return front
