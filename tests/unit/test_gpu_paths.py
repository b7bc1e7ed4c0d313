"""CUDA paths of every quantization method. They run where a GPU is present and skip, saying why,
where none is; `bench/gpu_check.py` runs the same checks as one short script on a lent GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenai.services.quantization.job import QuantizeJob, quantize_to_folder

try:
    import torch

    HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    HAS_CUDA = False

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("autoround", {"bits": 4, "group_size": 64}),
        ("gptq", {"bits": 4, "group_size": 64}),
        ("awq", {"group_size": 64}),
        ("bnb_int8", {}),
        ("bnb_4bit", {"quant_type": "nf4"}),
        ("torchao_int8", {"scheme": "weight_only"}),
        ("mixed", {"avg_bits": 4.5, "sensitivity_samples": 4}),
    ],
)
def test_method_on_cuda_loads_and_generates_on_cuda(
    tiny_model_dir: Path, tmp_path: Path, data_dir: Path, method: str, params: dict[str, Any]
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = tmp_path / "artifact"
    quantize_to_folder(
        QuantizeJob.parse(method, params, str(tiny_model_dir), str(target), str(data_dir), 8, 64, 0, "cuda")
    )
    model = AutoModelForCausalLM.from_pretrained(target, device_map="cuda")
    tok = AutoTokenizer.from_pretrained(target)
    ids = tok("The capital of France is", return_tensors="pt").to("cuda")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.input_ids.shape[1] + 4
    assert next(model.parameters()).device.type == "cuda"
