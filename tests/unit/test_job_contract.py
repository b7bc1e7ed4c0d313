"""The step jobs' shared contract (shared.job_contract): each agent's job validates with that agent's
own registry, refuses another method's or another agent's parameters and config as 'invalid', and
pickles for the process boundary. No model is loaded: every refusal comes before any work."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from greenai.services.lora.job import LoraJob
from greenai.services.pruning.job import PruneJob
from greenai.services.quantization.job import QuantizeJob
from greenai.shared.job_contract import StepJob
from greenai.shared.jobs import JobError

Parse = Callable[[str, dict[str, Any]], StepJob[Any]]


def quantize(method: str, params: dict[str, Any]) -> StepJob[Any]:
    return QuantizeJob.parse(method, params, "s", "t", None, 2, 32, 0, "cpu")


def prune(method: str, params: dict[str, Any]) -> StepJob[Any]:
    return PruneJob.parse(method, params, "s", "t", None, 2, 32, 0, "cpu")


def lora(method: str, params: dict[str, Any]) -> StepJob[Any]:
    return LoraJob.parse(method, params, "s", "t", "d", 2, 0, "cpu")


# (parse, a valid method and its params, another method's or another agent's params for it)
AGENTS: list[tuple[Parse, str, dict[str, Any], dict[str, Any]]] = [
    (quantize, "torchao_int8", {"scheme": "weight_only"}, {"bits": 4, "group_size": 64}),  # gptq's
    (prune, "magnitude", {"sparsity": 0.5}, {"layers": 2}),  # layer_drop's
    (lora, "lora", {"steps": 2}, {"sparsity": 0.5}),  # pruning's: both LoRA methods take the same config
]


@pytest.mark.parametrize(("parse", "method", "params", "foreign"), AGENTS, ids=["quantize", "prune", "lora"])
def test_parse_refuses_another_methods_config_and_unknown_params(
    parse: Parse, method: str, params: dict[str, Any], foreign: dict[str, Any]
) -> None:
    job = parse(method, params)
    assert job.config.model_dump().items() >= params.items()
    assert pickle.loads(pickle.dumps(job)) == job  # what crosses to the job child
    for bad_params in (foreign, {"nonsense": 1}, {**params, "nonsense": 1}, {"x" * 10_000: 1}):
        with pytest.raises(JobError, match="invalid parameters") as refused:
            parse(method, bad_params)
        assert refused.value.reason == "invalid"
    for bad_method in ("nonsense", "../quantization", "magnitude" if parse is not prune else "gptq"):
        with pytest.raises(JobError, match="unknown") as unknown:
            parse(bad_method, {})
        assert unknown.value.reason == "invalid"


def test_the_child_refuses_a_contract_carrying_another_agents_config() -> None:
    jobs = [parse(method, params) for parse, method, params, _ in AGENTS]
    for job in jobs:
        job.check_config()
        for other in jobs:
            if type(other.config) is type(job.config):
                continue
            forged = dataclasses.replace(job, config=other.config)
            with pytest.raises(JobError, match="carries a") as refused:
                forged.check_config()
            assert refused.value.reason == "invalid"


def test_calibration_needs_a_data_dir_only_when_the_method_reads_it() -> None:
    job = QuantizeJob.parse("torchao_int8", {}, "s", "t", None, 2, 32, 0, "cpu")
    assert job.calibration(False) is None
    with pytest.raises(JobError, match="GREENAI_DATA_DIR") as refused:
        job.calibration(True)
    assert refused.value.reason == "invalid"


def test_the_shared_contract_imports_no_agent() -> None:
    """An agent never imports another agent's code: the base must not pull any `greenai.services`."""
    code = "import sys, greenai.shared.job_contract; print([m for m in sys.modules if m.startswith(sys.argv[1])])"
    out = subprocess.run(
        [sys.executable, "-c", code, "greenai.services"], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
