"""Whether a configuration can run on this model at all, judged from its spec before any job is
spent on it. The agents still check for themselves (they know their own hardware); this only keeps
policies from proposing what the model's shapes rule out."""

from __future__ import annotations

from greenai.events.experiment import ModelSpec, Step

GROUPED = {"autoround", "gptq", "awq"}


def infeasible(steps: tuple[Step, ...], spec: ModelSpec | None) -> str | None:
    """Why the configuration cannot run on this model, or None when nothing rules it out."""
    if spec is None:
        return None
    widths = [w for w in (spec.hidden_size, spec.intermediate_size) if w]
    layers = spec.num_layers
    for step in steps:
        params = step.params
        if step.kind == "quantize" and step.method in GROUPED:
            group = params.get("group_size", 128)
            if isinstance(group, int) and group > 0:
                bad = [w for w in widths if w % group]
                if bad:
                    return f"{step.method}: group size {group} does not divide the layer width(s) {bad}"
        if step.kind == "prune" and step.method == "layer_drop" and layers is not None:
            drop = params.get("layers", 0)
            if isinstance(drop, int) and drop >= layers:
                return f"layer_drop: cannot drop {drop} of {layers} layers"
            layers -= drop if isinstance(drop, int) else 0
    return None
