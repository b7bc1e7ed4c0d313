"""Compiled int8: a torchao artifact records the runtime it is meant for, and the latency child measures
it under torch.compile (Inductor, for real), the compile time apart from ms/token, in the event's terms."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from greenai.events.results import Latency
from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.shared.jobs import JobError
from greenai.shared.model_io import read_runtime, write_runtime


@pytest.fixture(scope="module")
def int8_dirs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One quantization; the eager artifact is its copy with the runtime record the method writes for
    runtime='eager' (the same tensors: only the record differs)."""
    root = tmp_path_factory.mktemp("int8")
    job = QuantizeJob.parse("torchao_int8", {}, str(tiny_model_dir), str(root / "compiled"), None, 4, 64, 0, "cpu")
    assert quantize_to_folder(job).config["runtime"] == "compiled"
    shutil.copytree(root / "compiled", root / "eager")
    write_runtime(root / "eager", "eager")
    return {r: root / r for r in ("compiled", "eager")}


def measured(folder: Path) -> Latency:
    """The latency child's measurement, as the event records it, with short runs: the artifact's own
    runtime record decides eager or compiled (latency_of_folder runs the same with 5-15 full runs)."""
    from dataclasses import asdict

    from greenai.services.evaluation.latency import measure_latency
    from greenai.shared.model_io import load_model, load_tokenizer

    model, tokenizer = load_model(folder), load_tokenizer(folder)
    result = measure_latency(
        model, tokenizer, runtime=read_runtime(folder), prompt_tokens=8, decode_tokens=1, min_runs=1, max_runs=1
    )  # one decode step: two graphs to compile (prefill, decode), not a third for the growing cache
    return Latency(**asdict(result), host_lease=False)


@pytest.mark.slow  # Inductor's first compile of these graphs: ~60 s on a busy 2-core box, ~9 s once cached
def test_compiled_int8_is_measured_compiled_with_its_compile_time_apart(int8_dirs: dict[str, Path]) -> None:
    latency = measured(int8_dirs["compiled"])
    assert latency.runtime == "compiled"
    assert latency.compile_s is not None and latency.compile_s > 0
    # the timed run comes after the warm-up that compiled: its per-token figure is far below the compile time
    assert 0 < latency.decode_ms_per_token / 1000 < latency.compile_s
    assert latency.repetitions == 1


def test_eager_int8_says_eager_and_has_no_compile_time(int8_dirs: dict[str, Path]) -> None:
    assert read_runtime(int8_dirs["eager"]) == "eager"
    latency = measured(int8_dirs["eager"])
    assert latency.runtime == "eager" and latency.compile_s is None


def test_a_compiler_that_fails_here_is_an_unsupported_job_not_an_eager_figure(int8_dirs: dict[str, Path]) -> None:
    """Inductor pointed at a C++ compiler this machine lacks (its own config, caches off so nothing
    compiled earlier is reused): the measurement ends with the reason, and no figure is made up."""
    import torch
    from torch._inductor import config

    from greenai.shared.jobs import JobError

    torch._dynamo.reset()
    try:
        no_compiler = config.patch({"cpp.cxx": (None, "/nonexistent/g++"), "force_disable_caches": True})
        with no_compiler, pytest.raises(JobError, match=r"torch\.compile failed on this machine") as failed:
            measured(int8_dirs["compiled"])
    finally:
        torch._dynamo.reset()
    assert failed.value.reason == "unsupported" and "runtime='eager'" in failed.value.message


def test_an_evaluation_recorded_before_compile_time_existed_reads_as_version_4() -> None:
    import json

    from greenai.events import decode
    from greenai.events.results import EvaluateCompleted
    from tests.factories import evaluated

    event = json.loads(evaluated("e", 1, 0.5, 50.0, 100.0, 1000).encode())
    event["version"] = 3
    env = decode(json.dumps(event))
    assert env.version == 4 and isinstance(env.data, EvaluateCompleted)
    assert env.data.latency.compile_s is None and env.data.latency.runtime == "eager"
    event["data"]["latency"]["compile_s"] = -1.0  # a negative compile time is not a measurement
    event["version"] = 4
    with pytest.raises(ValueError, match="compile_s"):
        decode(json.dumps(event))


def test_the_front_says_which_runtime_each_latency_was_measured_with() -> None:
    from greenai.events.results import EvaluateCompleted
    from greenai.projections.pareto import pareto_front
    from tests import factories as f

    compiled = f.evaluated("e", 1, acc=0.55, ms=20, mem=300, size=1000)
    assert isinstance(compiled.data, EvaluateCompleted)
    latency = compiled.data.latency.model_copy(update={"runtime": "compiled", "compile_s": 42.0})
    compiled = compiled.model_copy(update={"data": compiled.data.model_copy(update={"latency": latency})})
    events = [f.run(), f.spec(), f.evaluated("e", 0, 0.6, 50, 500, 4000), f.decided("e", 1), compiled]
    runtimes = {c.episode: c.runtime for c in pareto_front(events).candidates}
    assert runtimes == {0: "eager", 1: "compiled"}


def test_int8_dynamic_is_refused_on_cuda_before_loading(tiny_model_dir: Path, tmp_path: Path) -> None:
    # measured on a lent H200: torch._int_mm needs > 16 rows, so batch-1 decode fails compiled
    job = QuantizeJob.parse(
        "torchao_int8", {"scheme": "dynamic"}, str(tiny_model_dir), str(tmp_path / "o"), None, 4, 64, 0, "cuda"
    )
    with pytest.raises(JobError, match="weight_only") as info:
        quantize_to_folder(job)
    assert info.value.reason == "unsupported"
    assert not (tmp_path / "o").exists()
