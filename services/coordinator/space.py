"""The search space the search policies sample: single compression steps and short pipelines.

Written define-by-run against a tiny 'trial' protocol, so the same function serves optuna's trials
(sampling) and a recorder (rebuilding a past decision's distributions from its stored point).
"""

from __future__ import annotations

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


class Recorder:
    """Replays a stored point through the space, collecting the distributions optuna needs."""

    def __init__(self, point: dict[str, Any]) -> None:
        self.point = point
        self.distributions: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        from optuna.distributions import CategoricalDistribution

        self.distributions[name] = CategoricalDistribution(list(choices))
        return self.point[name]
