"""Each method quantizes a tiny random Llama for real; the artifact reloads with plain transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.services.quantization.methods.auto import METHODS, get_method
from greenai.shared.jobs import JobError


def generate(folder: Path) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = tok("The capital of France is", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.input_ids.shape[1] + 4
    return str(tok.decode(out[0]))


@pytest.mark.parametrize(
    ("method", "params", "stored_method"),
    [
        ("autoround", {"bits": 4, "group_size": 64}, "auto-round"),
        ("autoround", {"bits": 8, "group_size": 64}, "auto-round"),
        ("bnb_int8", {}, "bitsandbytes"),
        ("bnb_4bit", {"quant_type": "nf4"}, "bitsandbytes"),
        ("bnb_4bit", {"quant_type": "fp4"}, "bitsandbytes"),
        ("gptq", {"bits": 4, "group_size": 64}, "gptq"),
        ("gptq", {"bits": 8, "group_size": 64, "act_order": True}, "gptq"),
        ("awq", {"group_size": 64}, "awq"),
        ("torchao_int8", {"scheme": "dynamic"}, "torchao"),
        ("torchao_int8", {"scheme": "weight_only"}, "torchao"),
    ],
)
def test_method_writes_a_loadable_quantized_folder(
    tiny_model_dir: Path, tmp_path: Path, data_dir: Path, method: str, params: dict[str, Any], stored_method: str
) -> None:
    target = tmp_path / "artifact"
    out = quantize_to_folder(
        QuantizeJob.parse(method, params, str(tiny_model_dir), str(target), str(data_dir), 4, 64, 0, "cpu")
    )
    config = json.loads((target / "config.json").read_text())
    assert config["quantization_config"]["quant_method"].replace("_", "-") == stored_method
    assert out.written.bytes > 0 and len(out.written.sha256) == 64
    assert out.source_parameters and out.source_parameters > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder left behind"
    assert not left_in_float32(tiny_model_dir, target), "embeddings, lm_head and norms are stored in 16 bit"
    generate(target)


def left_in_float32(source: Path, artifact: Path) -> list[str]:
    """The source's float32 tensors the artifact still stores, unchanged, in float32."""
    from greenai.shared.model_io import safetensors_header

    def float32(folder: Path) -> dict[str, list[int]]:
        return {
            k: v["shape"] for f in folder.glob("*.safetensors") for k, v in safetensors_header(f).items()
            if k != "__metadata__" and v["dtype"] == "F32"
        }  # fmt: skip

    before, after = float32(source), float32(artifact)
    return [k for k, shape in after.items() if before.get(k) == shape]


def test_autoround_with_calibration_uses_the_data_dir_not_the_hub(
    tiny_model_dir: Path, tmp_path: Path, data_dir: Path
) -> None:
    target = tmp_path / "artifact"
    quantize_to_folder(QuantizeJob.parse(
        "autoround", {"bits": 4, "group_size": 64, "iters": 2, "nsamples": 2, "seqlen": 32},
        str(tiny_model_dir), str(target), str(data_dir), 2, 32, 0, "cpu",
    ))  # fmt: skip
    generate(target)


def test_invalid_settings_are_job_errors_not_crashes(tiny_model_dir: Path) -> None:
    from transformers import AutoConfig

    method = get_method("autoround")
    with pytest.raises(JobError, match="bits") as info:
        method.parse({"bits": 5})
    assert info.value.reason == "invalid"
    with pytest.raises(JobError, match="group size 96"):
        method.check_model(method.parse({"group_size": 96}), AutoConfig.from_pretrained(tiny_model_dir))
    with pytest.raises(JobError, match="unknown quantization method"):
        get_method("magic")


def test_every_method_declares_what_it_needs() -> None:
    for name, cls in METHODS.items():
        assert cls.name == name
        assert cls.requirements.cpu or cls.requirements.cuda
    cuda_only = type(
        "CudaOnly",
        (METHODS["bnb_int8"],),
        {"requirements": METHODS["bnb_int8"].requirements.__class__(cpu=False, cuda=True, memory_factor=1)},
    )
    with pytest.raises(JobError, match="needs a CUDA GPU") as info:
        cuda_only().check_hardware("cpu")
    assert info.value.reason == "unsupported"


def test_the_child_contract_is_typed_and_a_mismatched_config_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    import dataclasses
    import pickle

    job = QuantizeJob.parse("bnb_int8", {}, str(tiny_model_dir), str(tmp_path / "o"), None, 2, 32, 0, "cpu")
    assert pickle.loads(pickle.dumps(job)) == job  # what crosses to the spawned child
    with pytest.raises(JobError, match="invalid parameters") as bad:
        QuantizeJob.parse("torchao_int8", {"scheme": "int3"}, "s", "t", None, 2, 32, 0, "cpu")
    assert bad.value.reason == "invalid"
    forged = dataclasses.replace(job, method="torchao_int8")  # another method's config
    with pytest.raises(JobError, match="carries a") as refused:
        quantize_to_folder(forged)
    assert refused.value.reason == "invalid" and not (tmp_path / "o").exists()
