"""Plotly figures of a Pareto front and the self-contained page that shows them. Pure: the same front
gives the same figures and the same bytes."""

from __future__ import annotations

import html
from typing import Any

from greenai.projections.pareto import Candidate, ParetoFront

PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("latency_ms_per_token", "accuracy", "decode ms/token", "accuracy"),
    ("peak_rss_mb", "accuracy", "peak memory (MiB)", "accuracy"),
    ("size_mib", "accuracy", "size on disk (MiB)", "accuracy"),
    ("latency_ms_per_token", "peak_rss_mb", "decode ms/token", "peak memory (MiB)"),
)


def _value(c: Candidate, name: str) -> float:
    return c.size_bytes / 2**20 if name == "size_mib" else float(getattr(c, name))


def _label(c: Candidate) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(c.params.items()) if k != "steps")
    return f"ep {c.episode}: {c.method}" + (f" ({params})" if params else "")


BASELINE = "baseline (uncompressed)"


def _interval(points: list[Candidate], name: str) -> dict[str, Any]:
    """Accuracy's 95 % interval and latency's spread (IQR, centred) as error bars, so nobody reads noise
    as a win; other axes have none."""
    if name == "latency_ms_per_token" and any(c.latency_iqr_ms is not None for c in points):
        return {"type": "data", "array": [(c.latency_iqr_ms or 0.0) / 2 for c in points], "visible": True}
    if name != "accuracy":
        return {"visible": False}
    return {
        "type": "data",
        "symmetric": False,
        "array": [c.ci_high - c.accuracy for c in points],
        "arrayminus": [c.accuracy - c.ci_low for c in points],
        "visible": True,
    }


def pareto_figures(front: ParetoFront, title: str) -> tuple[Any, Any]:
    """A 2×2 grid of the trade-offs and a 3D view (latency, size, accuracy); front points highlighted,
    the uncompressed baseline marked as the reference, accuracy drawn with its 95 % interval."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    on_front = {(c.experiment_id, c.episode) for c in front.front}
    compressed = [c for c in front.candidates if c.episode != 0]
    groups = {
        BASELINE: [c for c in front.candidates if c.episode == 0],
        "Pareto front": [c for c in compressed if (c.experiment_id, c.episode) in on_front],
        "dominated": [c for c in compressed if (c.experiment_id, c.episode) not in on_front],
    }
    colour = {BASELINE: "#d95f02", "Pareto front": "#1b9e77", "dominated": "#999999"}
    size = {BASELINE: 15, "Pareto front": 11, "dominated": 8}
    symbol = {BASELINE: "star", "Pareto front": "circle", "dominated": "circle-open"}
    grid = make_subplots(rows=2, cols=2, subplot_titles=[f"{y} vs {x}" for _, _, x, y in PAIRS])
    for i, (xa, ya, xl, yl) in enumerate(PAIRS):
        row, col = i // 2 + 1, i % 2 + 1
        for name, points in groups.items():
            if not points:
                continue
            grid.add_trace(
                go.Scatter(
                    x=[_value(c, xa) for c in points],
                    y=[_value(c, ya) for c in points],
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=i == 0,
                    marker={"color": colour[name], "size": size[name], "symbol": symbol[name]},
                    error_x=_interval(points, xa),
                    error_y=_interval(points, ya),
                    text=[_label(c) for c in points],
                    hovertemplate="%{text}<br>" + xl + ": %{x:.2f}<br>" + yl + ": %{y:.3f}<extra></extra>",
                ),
                row=row,
                col=col,
            )
        grid.update_xaxes(title_text=xl, row=row, col=col)
        grid.update_yaxes(title_text=yl, row=row, col=col)
    grid.update_layout(title=title, height=800)
    cube = go.Figure(
        [
            go.Scatter3d(
                x=[c.latency_ms_per_token for c in points],
                y=[c.size_bytes / 2**20 for c in points],
                z=[c.accuracy for c in points],
                mode="markers",
                name=name,
                marker={"color": colour[name], "size": size[name] // 2},
                error_z=_interval(points, "accuracy"),
                text=[_label(c) for c in points],
            )
            for name, points in groups.items()
            if points
        ]
    )
    cube.update_layout(
        title="accuracy, latency and size",
        scene={"xaxis_title": "decode ms/token", "yaxis_title": "size (MiB)", "zaxis_title": "accuracy"},
        height=700,
    )
    return grid, cube


def pareto_html(front: ParetoFront, title: str) -> str:
    """One self-contained page (plotly.js inlined: it must open offline), stable ids for stable bytes."""
    grid, cube = pareto_figures(front, title)
    body = grid.to_html(full_html=False, include_plotlyjs=True, div_id="pareto-grid") + cube.to_html(
        full_html=False, include_plotlyjs=False, div_id="pareto-3d"
    )
    head = f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head><body>\n'
    return head + body + "\n</body></html>\n"
