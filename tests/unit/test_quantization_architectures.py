"""Every announced CPU quantization method on tiny random GPT-2, Qwen2 and Phi-3 folders: it writes an
artifact that reloads and generates, or it is refused as `unsupported` before any weights are read
(GPTQ and AWQ on GPT-2's Conv1D and Phi-3's fused projections, where GPTQModel fails)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.services.quantization.methods.auto import get_method
from greenai.shared.jobs import JobError
from tests.unit.test_pruning_architectures import generates, model_dirs  # noqa: F401 - a fixture

TYPES = ["gpt2", "qwen2", "phi3"]
RUNS: list[tuple[str, dict[str, Any]]] = [
    ("bnb_int8", {}),
    ("bnb_4bit", {"quant_type": "nf4"}),
    ("torchao_int8", {"scheme": "dynamic"}),
    ("autoround", {"bits": 4, "group_size": 32, "iters": 0}),
    ("gptq", {"bits": 4, "group_size": 32}),
    ("awq", {"bits": 4, "group_size": 32}),
]
SLOW = {"gptq", "awq"}  # where they are supported they are covered on the tiny Llama (test_quantization_methods)


@pytest.mark.parametrize(("method", "params"), RUNS, ids=[m for m, _ in RUNS])
@pytest.mark.parametrize("model_type", TYPES)
def test_every_method_quantizes_every_family_or_refuses_it_before_loading(
    model_dirs: dict[str, Path],  # noqa: F811
    data_dir: Path,
    tmp_path: Path,
    model_type: str,
    method: str,
    params: dict[str, Any],
) -> None:
    source, target = model_dirs[model_type], tmp_path / "out"
    families = get_method(method).families
    if families is not None and model_type not in families:
        with pytest.raises(JobError) as refused:
            quantize_to_folder(
                QuantizeJob.parse(method, params, str(source), str(target), str(data_dir), 4, 64, 0, "cpu")
            )
        assert refused.value.reason == "unsupported" and not target.exists()
        return
    if method in SLOW:
        pytest.skip(f"{method} on {model_type}: supported; too slow for this file")
    out = quantize_to_folder(
        QuantizeJob.parse(method, params, str(source), str(target), str(data_dir), 4, 64, 0, "cpu")
    )
    assert out.written.bytes > 0
    generates(target)
