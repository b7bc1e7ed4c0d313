"""What 'better' means for a run: objective presets with weights and hard constraints.

Scores are relative to the experiment's own uncompressed baseline, so one preset works for any model.
"""

from __future__ import annotations

from dataclasses import dataclass

from greenai.events.results import EvaluateCompleted


@dataclass(frozen=True)
class Objective:
    name: str
    accuracy: float
    latency: float
    memory: float
    size: float
    min_accuracy_retained: float = 0.0  # below this fraction of the baseline's accuracy: infeasible
    max_size_ratio: float | None = None  # above this fraction of the baseline's size: infeasible

    def score(self, result: EvaluateCompleted, baseline: EvaluateCompleted) -> float:
        """Higher is better; an infeasible result scores below every feasible one."""
        retained = result.accuracy / baseline.accuracy if baseline.accuracy > 0 else 0.0
        latency = result.latency.decode_ms_per_token / max(baseline.latency.decode_ms_per_token, 1e-9)
        memory = result.peak_rss_mb / max(baseline.peak_rss_mb, 1e-9)
        size = result.size_bytes / max(baseline.size_bytes, 1)
        value = self.accuracy * retained - self.latency * latency - self.memory * memory - self.size * size
        feasible = retained >= self.min_accuracy_retained and (
            self.max_size_ratio is None or size <= self.max_size_ratio
        )
        return value if feasible else value - 10.0


PRESETS: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("balanced", accuracy=1.0, latency=0.3, memory=0.2, size=0.3, min_accuracy_retained=0.8),
        Objective("accuracy_focused", accuracy=3.0, latency=0.1, memory=0.1, size=0.2, min_accuracy_retained=0.95),
        Objective("latency_focused", accuracy=1.0, latency=1.0, memory=0.1, size=0.1, min_accuracy_retained=0.8),
        Objective("memory_constrained", accuracy=1.0, latency=0.1, memory=0.5, size=0.6, max_size_ratio=0.35),
    )
}
