"""A deterministic walk over the methods' own presets, in the rank their agents give them
(cheapest and safest first), then the announced pipelines: a compression followed by its recovery."""

from __future__ import annotations

from greenai.events.experiment import Step, steps_key
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory, params_key
from greenai.services.coordinator.feasibility import infeasible
from greenai.services.coordinator.policies.base import Decision, Policy


def ladder(offers: Offers) -> list[tuple[int, tuple[Step, ...], str]]:
    """(rank, steps, rationale) for every preset; a recovery preset follows the best-ranked preset of
    the kind it names (`after`), and, when that kind is itself compressed further, the pipeline too."""
    singles: list[tuple[int, tuple[Step, ...], str]] = []
    for m in offers.methods:
        if m.stage != "compress":
            continue
        for p in m.presets:
            singles.append((p.rank, (Step(kind=m.kind, method=m.name, params=dict(p.params)),), p.rationale))
    singles.sort(key=lambda r: (r[0], steps_key(r[1])))
    rungs = list(singles)
    for m in offers.methods:
        if m.stage != "recover":
            continue
        for p in m.presets:
            first = next((s for s in singles if p.after and s[1][0].kind == p.after), None)
            if first is None:
                continue
            steps = (*first[1], Step(kind=m.kind, method=m.name, params=dict(p.params)))
            rungs.append((p.rank, steps, f"{first[2]}; then {p.rationale}"))
    rungs.sort(key=lambda r: (r[0], steps_key(r[1])))
    return rungs


class GridPolicy(Policy):
    name = "grid"

    def decide(self, state: ExperimentState, skills: SkillMemory, offers: Offers) -> Decision:
        tried = state.tried_keys()
        family = state.spec.family if state.spec else "unknown"
        # a configuration that failed every time on this model family is not worth another try
        hopeless = {
            (s.method, params_key(s.params)) for s in skills.for_family(family) if s.trials and s.failures >= s.trials
        }
        for _, steps, why in ladder(offers):
            label = " → ".join(s.method for s in steps)
            params = dict(steps[0].params) if len(steps) == 1 else {"steps": [s.model_dump() for s in steps]}
            if (
                steps_key(steps) in tried
                or (label, params_key(params)) in hopeless
                or infeasible(steps, state.spec, offers) is not None
            ):
                continue
            return Decision("compress", steps, f"grid step: {why}")
        return Decision("end", rationale="grid exhausted" if offers else "no live agent offers a method")
