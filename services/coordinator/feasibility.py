"""Whether a configuration can run at all, judged before any job is spent on it: is its method on
offer from a live agent, does it support this model's family, do the model's shapes allow its
parameters. Every rule comes from the method's announced catalogue entry; the agents still check
for themselves (they know their own hardware)."""

from __future__ import annotations

from typing import Any

from greenai.events.capabilities import MethodOffer
from greenai.events.experiment import ModelSpec, Step
from greenai.projections.capabilities import Offers


def param_value(offer: MethodOffer, step: Step, name: str) -> Any:
    """The step's value, or the method's own default from its announced schema."""
    if name in step.params:
        return step.params[name]
    return offer.params_schema.get("properties", {}).get(name, {}).get("default")


def infeasible(steps: tuple[Step, ...], spec: ModelSpec | None, offers: Offers) -> str | None:
    """Why the configuration cannot run, or None when nothing rules it out."""
    layers = spec.num_layers if spec else None
    widths = [w for w in (spec.hidden_size, spec.intermediate_size) if w] if spec else []
    for step in steps:
        offer = offers.get(step.kind, step.method)
        if offer is None:
            return f"no live agent offers {step.kind} method {step.method!r}"
        if spec is not None and offer.families is not None and spec.family not in offer.families:
            return f"{step.method} does not support model family {spec.family!r} (it supports {offer.families})"
        for name in offer.divides_widths:
            group = param_value(offer, step, name)
            if isinstance(group, int) and group > 0:
                bad = [w for w in widths if w % group]
                if bad:
                    return f"{step.method}: {name} {group} does not divide the layer width(s) {bad}"
        if offer.removes_layers and layers is not None:
            drop = param_value(offer, step, offer.removes_layers)
            if isinstance(drop, int):
                if drop >= layers:
                    return f"{step.method}: cannot remove {drop} of {layers} layers"
                layers -= drop
    return None
