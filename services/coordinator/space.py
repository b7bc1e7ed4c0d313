"""The search space the policies sample, built from what the live agents offer (never a method list).

A configuration is a *shape* (one compression kind, two compression kinds in pipeline order, or a
compression followed by a recovery) and its steps. A single step is searched over its method's
announced grids; a pipeline combines the methods' presets (the settings their owners recommend), so
pipelines stay few. In the cpu-fast space a preset counts only if its values lie in the method's
fast grids. Written
define-by-run against a tiny 'trial' protocol, so one function serves optuna's trials (sampling),
the enumerator (every configuration, for the bandit and for exhaustion) and the recorder.

Choice names carry a short hash of their choices: when an agent joins or leaves, a coordinate with
new choices is a new coordinate to optuna (it refuses a categorical whose choices change).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from greenai.events.capabilities import Grid, MethodOffer
from greenai.events.experiment import Step
from greenai.projections.capabilities import Offers

SPACES = ("full", "cpu-fast")


class TrialLike(Protocol):
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def _tag(choices: list[Any]) -> str:
    return hashlib.sha256(json.dumps(choices, sort_keys=True, default=str).encode()).hexdigest()[:4]


def choose(trial: TrialLike, name: str, choices: list[Any]) -> Any:
    return trial.suggest_categorical(f"{name}#{_tag(choices)}", choices)


@dataclass(frozen=True)
class Space:
    offers: Offers
    name: str = "full"

    def __post_init__(self) -> None:
        if self.name not in SPACES:
            raise ValueError(f"unknown search space {self.name!r}; known: {', '.join(SPACES)}")

    def grids(self, offer: MethodOffer) -> list[Grid]:
        grids = offer.fast_search if self.name == "cpu-fast" else offer.search
        return list(grids or [])

    def searchable(self, kind: str) -> list[MethodOffer]:
        return [m for m in self.offers.of_kind(kind) if self.grids(m)]

    def shapes(self) -> list[str]:
        compress = [k for k in self.offers.kinds("compress") if self.searchable(k)]
        shapes = list(compress)
        for i, first in enumerate(compress):
            for then in compress[i + 1 :]:
                if self.presets(first) and self.presets(then):
                    shapes.append(f"{first}+{then}")
        for recover in self.offers.kinds("recover"):
            for first in compress:
                if self.presets(first) and self.presets(recover, after=first):
                    shapes.append(f"{first}+{recover}")
        return shapes

    def _fits(self, offer: MethodOffer, params: dict[str, Any]) -> bool:
        if self.name != "cpu-fast":
            return True
        return any(all(v in grid.get(k, [v]) for k, v in params.items()) for grid in offer.fast_search or [])

    def presets(self, kind: str, after: str | None = None) -> list[tuple[str, Step]]:
        """(label, step) for a kind's presets in this space; for recovery kinds, those meant to follow `after`."""
        out = []
        for m in self.offers.of_kind(kind):
            for p in sorted(m.presets, key=lambda p: p.rank):
                if (m.stage == "recover" and p.after != after) or not self._fits(m, p.params):
                    continue
                label = m.name + "".join(f" {k}={v}" for k, v in sorted(p.params.items()))
                out.append((label, Step(kind=kind, method=m.name, params=dict(p.params))))
        return out

    def __call__(self, trial: TrialLike) -> tuple[Step, ...]:
        shapes = self.shapes()
        if not shapes:
            raise LookupError("no live agent offers a searchable method")
        shape = choose(trial, "shape", shapes)
        kinds = shape.split("+")
        if len(kinds) == 1:
            return (self._searched(trial, kinds[0]),)
        steps = []
        for kind in kinds:
            presets = dict(self.presets(kind, after=kinds[0] if kind != kinds[0] else None))
            steps.append(presets[choose(trial, f"{shape}.{kind}", list(presets))])
        return tuple(steps)

    def _searched(self, trial: TrialLike, kind: str) -> Step:
        offers = {m.name: m for m in self.searchable(kind)}
        offer = offers[choose(trial, f"{kind}.method", list(offers))]
        grids = self.grids(offer)
        grid = grids[choose(trial, f"{offer.name}.variant", list(range(len(grids))))] if len(grids) > 1 else grids[0]
        params = {k: choose(trial, f"{offer.name}.{k}", list(v)) if len(v) > 1 else v[0] for k, v in grid.items()}
        return Step(kind=kind, method=offer.name, params=params)


class _Walker:
    """Follows a forced prefix of choices, then the first choice, noting how many there were."""

    def __init__(self, prefix: list[int]) -> None:
        self.prefix, self.taken, self.sizes = prefix, list[int](), list[int]()
        self.point: dict[str, Any] = {}
        self.choices: dict[str, list[Any]] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        i = len(self.taken)
        pick = self.prefix[i] if i < len(self.prefix) else 0
        self.taken.append(pick)
        self.sizes.append(len(choices))
        self.choices[name] = list(choices)
        self.point[name] = list(choices)[pick]
        return self.point[name]


@dataclass(frozen=True)
class Configuration:
    steps: tuple[Step, ...]
    point: dict[str, Any]
    choices: dict[str, list[Any]]


def configurations(space: Space) -> list[Configuration]:
    """Every configuration a space can produce, in a fixed order (depth-first over its choices)."""
    if not space.shapes():
        return []
    out, stack = [], [list[int]()]
    while stack:
        walker = _Walker(stack.pop())
        steps = space(walker)
        out.append(Configuration(steps, walker.point, walker.choices))
        for depth in range(len(walker.taken) - 1, len(walker.prefix) - 1, -1):
            for alt in range(walker.sizes[depth] - 1, walker.taken[depth], -1):
                stack.append([*walker.taken[:depth], alt])
    return out


class Recorder:
    """Collects, for a trial optuna is sampling, the choices of each coordinate (kept in the decision)."""

    def __init__(self, trial: TrialLike) -> None:
        self.trial = trial
        self.choices: dict[str, list[Any]] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.choices[name] = list(choices)
        return self.trial.suggest_categorical(name, choices)
