"""Search policies on optuna: TPE and NSGA-II (multi-objective), and random sampling.

The coordinator keeps no state between decisions, so the study is rebuilt from the experiment's
events every time: each past episode becomes a finished trial (its stored search point and the
choices each coordinate had, its measured accuracy, latency and size; a failed episode is a failed
trial), then the seeded sampler proposes the next point over the space the live agents offer now.
The same history and the same offers always give the same proposal.
"""

from __future__ import annotations

import logging
import random
from typing import Any, ClassVar, Literal

from greenai.events.experiment import steps_key
from greenai.projections.capabilities import Offers
from greenai.projections.experiment import ExperimentState
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.feasibility import infeasible
from greenai.services.coordinator.policies.base import Decision, Policy
from greenai.services.coordinator.space import Recorder, Space, configurations

DIRECTIONS: list[Literal["minimize", "maximize"]] = ["maximize", "minimize", "minimize"]  # accuracy, ms/token, size


class OptunaPolicy(Policy):
    name: ClassVar[str]

    def sampler(self, seed: int) -> Any:
        raise NotImplementedError

    def rebuilt_attrs(self, completed: int) -> dict[str, Any]:
        """System attributes a rebuilt trial needs for the sampler's own bookkeeping."""
        return {}

    def decide(self, state: ExperimentState, skills: SkillMemory, offers: Offers) -> Decision:
        import optuna
        from optuna.distributions import CategoricalDistribution

        optuna.logging.set_verbosity(logging.WARNING)
        seed = (state.run.seed if state.run else 0) + 7919 * len(state.episodes)
        study = optuna.create_study(directions=DIRECTIONS, sampler=self.sampler(seed))
        space = Space(offers, state.run.space if state.run else "full")
        if not space.shapes():
            return Decision("end", rationale=f"{self.name}: no live agent offers a searchable method")
        completed = 0
        for ep in sorted(state.episodes.values(), key=lambda e: e.number):
            point, choices = ep.decision.search_point, ep.decision.search_space
            if point is None or choices is None or not ep.finished or set(point) - set(choices):
                continue  # a decision from before spaces were recorded, or not a search policy's
            distributions: dict[str, Any] = {name: CategoricalDistribution(choices[name]) for name in point}
            if ep.evaluated is not None:
                r = ep.evaluated
                past = optuna.trial.create_trial(
                    params=point,
                    distributions=distributions,
                    values=[r.accuracy, r.latency.decode_ms_per_token, r.size_bytes / 2**20],
                    system_attrs=self.rebuilt_attrs(completed),
                )
                completed += 1
            else:
                past = optuna.trial.create_trial(
                    params=point, distributions=distributions, state=optuna.trial.TrialState.FAIL
                )
            study.add_trial(past)
        tried = state.tried_keys()
        for _ in range(25):  # samplers may propose a configuration already run, or one the model rules out
            trial = study.ask()
            recorder = Recorder(trial)
            steps = space(recorder)
            if infeasible(steps, state.spec, offers) is not None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)  # the sampler learns to avoid it
                continue
            if steps_key(steps) not in tried:
                break
        done = sum(1 for t in study.trials if t.state.is_finished())
        if steps_key(steps) in tried or infeasible(steps, state.spec, offers) is not None:
            # the sampler keeps proposing what has been run: take an untried configuration instead, so no
            # episode is spent twice on the same one while others remain
            left = [
                c
                for c in configurations(space)
                if steps_key(c.steps) not in tried and infeasible(c.steps, state.spec, offers) is None
            ]
            if not left:
                return Decision("end", rationale=f"{self.name}: every feasible configuration of the space was run")
            pick = random.Random(seed).choice(left)
            return Decision(
                "compress", pick.steps, f"{self.name}: sampler repeated itself; an untried configuration instead",
                search_point=pick.point, search_space=pick.choices,
            )  # fmt: skip
        return Decision(
            "compress",
            steps,
            f"{self.name} proposal after {done} finished trial(s): "
            + " → ".join(f"{s.method} {s.params}" for s in steps),
            search_point=dict(trial.params),
            search_space=recorder.choices,
        )


class TPEPolicy(OptunaPolicy):
    name = "tpe"

    def sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4, multivariate=True, group=True)


class NSGA2Policy(OptunaPolicy):
    name = "nsga2"

    def sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.NSGAIISampler(seed=seed, population_size=self.population)

    population = 6

    def rebuilt_attrs(self, completed: int) -> dict[str, Any]:
        # NSGA-II counts generations in trial attributes; trials rebuilt from the log have none, and
        # without them every proposal would come from generation 0, i.e. be random
        return {"NSGAIISampler:generation": completed // self.population}


class RandomPolicy(OptunaPolicy):
    name = "random"

    def sampler(self, seed: int) -> Any:
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)
