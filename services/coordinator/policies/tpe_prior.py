"""TPE with a prior: its start-up trials are not random draws but the agents' own presets in the rank
they give them (the grid's ladder: mildest and safest first), as far as the search space holds them;
then TPE takes over, every finished episode a trial.

Why: plain TPE spends its first trials on whatever the sampler draws, often a catastrophic configuration.
This is the baseline that separates what a prior buys from what a smarter search (or an LLM) buys.
"""

from __future__ import annotations

from greenai.events.experiment import steps_key
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.feasibility import infeasible
from greenai.services.coordinator.policies.base import Decision
from greenai.services.coordinator.policies.grid import ladder
from greenai.services.coordinator.policies.search import TPEPolicy
from greenai.services.coordinator.space import Configuration, Space, configurations

PRIOR_TRIALS = 4  # as many as TPE's random start-up trials


def prior(space: Space, offers: Offers) -> list[tuple[Configuration, str]]:
    """The ladder's rungs that are configurations of the space (so they become trials), in rank order."""
    by_key = {steps_key(c.steps): c for c in configurations(space)}
    return [(by_key[steps_key(steps)], why) for _, steps, why in ladder(offers) if steps_key(steps) in by_key]


class TPEPriorPolicy(TPEPolicy):
    name = "tpe-prior"

    def decide(self, state: ExperimentState, skills: SkillMemory, offers: Offers) -> Decision:
        space = Space(offers, state.run.space if state.run else "full")
        tried = state.tried_keys()
        rungs = [(c, why) for c, why in prior(space, offers) if infeasible(c.steps, state.spec, offers) is None]
        for config, why in rungs[:PRIOR_TRIALS]:
            if steps_key(config.steps) not in tried:
                return Decision(
                    "compress", config.steps, f"{self.name}: prior, a preset of rank order ({why})",
                    search_point=config.point, search_space=config.choices,
                )  # fmt: skip
        return super().decide(state, skills, offers)
