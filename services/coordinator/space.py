"""The search space the search policies sample: single compression steps and short pipelines.

Written define-by-run against a tiny 'trial' protocol, so the same function serves optuna's trials
(sampling) and a recorder (rebuilding a past decision's distributions from its stored point).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from greenai.events.experiment import Step


class TrialLike(Protocol):
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def suggest_steps(trial: TrialLike) -> tuple[Step, ...]:
    kind = trial.suggest_categorical("kind", ["quantize", "prune", "prune+lora"])
    if kind == "quantize":
        return (_quantize(trial),)
    prune = _prune(trial)
    if kind == "prune":
        return (prune,)
    steps = trial.suggest_categorical("lora.steps", [50, 100, 200])
    return (prune, Step(kind="lora", method="lora", params={"steps": steps}))


def _quantize(trial: TrialLike) -> Step:
    method = trial.suggest_categorical(
        "quantize.method", ["autoround", "gptq", "awq", "bnb_int8", "bnb_4bit", "torchao_int8"]
    )
    params: dict[str, Any]
    if method == "autoround":
        params = {
            "bits": trial.suggest_categorical("autoround.bits", [2, 3, 4, 8]),
            "group_size": 64,
            "iters": trial.suggest_categorical("autoround.iters", [0, 50]),
        }
    elif method == "gptq":
        params = {"bits": trial.suggest_categorical("gptq.bits", [3, 4, 8]), "group_size": 64}
    elif method == "awq":
        params = {"bits": 4, "group_size": 64}
    elif method == "bnb_4bit":
        params = {"quant_type": trial.suggest_categorical("bnb_4bit.quant_type", ["nf4", "fp4"])}
    elif method == "torchao_int8":
        params = {"scheme": trial.suggest_categorical("torchao.scheme", ["dynamic", "weight_only"])}
    else:
        params = {}
    return Step(kind="quantize", method=method, params=params)


def _prune(trial: TrialLike) -> Step:
    method = trial.suggest_categorical(
        "prune.method", ["magnitude", "wanda", "sparsegpt", "layer_drop", "mlp_channels"]
    )
    if method == "layer_drop":
        return Step(
            kind="prune", method=method, params={"layers": trial.suggest_categorical("layer_drop.layers", [2, 4, 6])}
        )
    if method == "mlp_channels":
        return Step(
            kind="prune",
            method=method,
            params={"ratio": trial.suggest_categorical("mlp_channels.ratio", [0.125, 0.25])},
        )
    pattern = trial.suggest_categorical("prune.pattern", ["30%", "50%", "2:4"])
    params: dict[str, Any] = {"pattern": "2:4"} if pattern == "2:4" else {"sparsity": int(pattern[:-1]) / 100}
    return Step(kind="prune", method=method, params=params)


def cpu_fast_steps(trial: TrialLike) -> tuple[Step, ...]:
    """Configurations a 2-core CPU runs in minutes (no tuned rounding, no GPTQ/AWQ search, short LoRA).

    Also the space of the recorded landscape that `bench/search_efficiency.py` replays policies on.
    """
    kind = trial.suggest_categorical("kind", ["quantize", "prune", "prune+quantize", "prune+lora"])
    if kind == "quantize":
        method = trial.suggest_categorical("quantize.method", ["autoround", "bnb_int8", "bnb_4bit", "torchao_int8"])
        params: dict[str, Any] = {}
        if method == "autoround":
            params = {
                "bits": trial.suggest_categorical("autoround.bits", [8, 4, 3, 2]),
                "group_size": trial.suggest_categorical("autoround.group_size", [64, 32, 128]),
                "iters": 0,
            }
        elif method == "bnb_4bit":
            params = {"quant_type": trial.suggest_categorical("bnb_4bit.quant_type", ["nf4", "fp4"])}
        elif method == "torchao_int8":
            params = {"scheme": trial.suggest_categorical("torchao.scheme", ["dynamic", "weight_only"])}
        return (Step(kind="quantize", method=method, params=params),)
    if kind == "prune":
        method = trial.suggest_categorical(
            "prune.method", ["magnitude", "wanda", "sparsegpt", "layer_drop", "mlp_channels"]
        )
        if method == "layer_drop":
            layers = trial.suggest_categorical("layer_drop.layers", [2, 4, 6, 8])
            return (Step(kind="prune", method=method, params={"layers": layers}),)
        if method == "mlp_channels":
            ratio = trial.suggest_categorical("mlp_channels.ratio", [0.125, 0.25, 0.5])
            return (Step(kind="prune", method=method, params={"ratio": ratio}),)
        pattern = trial.suggest_categorical("prune.pattern", ["30%", "50%", "2:4"])
        params = {"pattern": "2:4"} if pattern == "2:4" else {"sparsity": int(pattern[:-1]) / 100}
        return (Step(kind="prune", method=method, params=params),)
    if kind == "prune+quantize":
        name = trial.suggest_categorical("pipeline", list(_PRUNE_QUANTIZE))
        return _PRUNE_QUANTIZE[name]
    name = trial.suggest_categorical("pipeline.lora", list(_PRUNE_LORA))
    return _PRUNE_LORA[name]


def _step(kind: str, method: str, **params: Any) -> Step:
    return Step(kind=kind, method=method, params=params)


_W4 = _step("quantize", "autoround", bits=4, group_size=64, iters=0)
_LORA = _step("lora", "lora", steps=50, rank=8)
_PRUNE_QUANTIZE: dict[str, tuple[Step, ...]] = {
    "wanda30+w4": (_step("prune", "wanda", sparsity=0.3), _W4),
    "wanda50+w4": (_step("prune", "wanda", sparsity=0.5), _W4),
    "sparsegpt30+w4": (_step("prune", "sparsegpt", sparsity=0.3), _W4),
    "sparsegpt50+w4": (_step("prune", "sparsegpt", sparsity=0.5), _W4),
    "drop4+w4": (_step("prune", "layer_drop", layers=4), _W4),
    "mlp25+w4": (_step("prune", "mlp_channels", ratio=0.25), _W4),
    "sparsegpt50+nf4": (_step("prune", "sparsegpt", sparsity=0.5), _step("quantize", "bnb_4bit", quant_type="nf4")),
}
_PRUNE_LORA: dict[str, tuple[Step, ...]] = {
    "sparsegpt50+lora": (_step("prune", "sparsegpt", sparsity=0.5), _LORA),
    "drop4+lora": (_step("prune", "layer_drop", layers=4), _LORA),
}

Space = Callable[[TrialLike], tuple[Step, ...]]
SPACES: dict[str, Space] = {"full": suggest_steps, "cpu-fast": cpu_fast_steps}


def space_of(name: str) -> Space:
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; known: {', '.join(SPACES)}") from None


class _Walker:
    """Follows a forced prefix of choices, then the first choice, noting how many there were."""

    def __init__(self, prefix: list[int]) -> None:
        self.prefix, self.taken, self.sizes = prefix, list[int](), list[int]()
        self.point: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        i = len(self.taken)
        pick = self.prefix[i] if i < len(self.prefix) else 0
        self.taken.append(pick)
        self.sizes.append(len(choices))
        self.point[name] = list(choices)[pick]
        return self.point[name]


def configurations(space: Space) -> list[tuple[Step, ...]]:
    """Every configuration a space can produce, in a fixed order (depth-first over its choices)."""
    return [steps for steps, _ in configuration_points(space)]


def configuration_points(space: Space) -> list[tuple[tuple[Step, ...], dict[str, Any]]]:
    """Every configuration with the search point (choice name -> value) that produces it."""
    out, stack = [], [list[int]()]
    while stack:
        walker = _Walker(stack.pop())
        out.append((space(walker), walker.point))
        for depth in range(len(walker.taken) - 1, len(walker.prefix) - 1, -1):
            for alt in range(walker.sizes[depth] - 1, walker.taken[depth], -1):
                stack.append([*walker.taken[:depth], alt])
    return out


class Recorder:
    """Replays a stored point through the space, collecting the distributions optuna needs."""

    def __init__(self, point: dict[str, Any]) -> None:
        self.point = point
        self.distributions: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        from optuna.distributions import CategoricalDistribution

        self.distributions[name] = CategoricalDistribution(list(choices))
        return self.point[name]
