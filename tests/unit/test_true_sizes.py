"""True sizes: what a quantized artifact stores, counted from its tensors; the tensors a method leaves
unquantized stored in 16 bit (and still reloading); malformed checkpoints and runtime records refused."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.services.quantization.methods.storage import store_unquantized
from greenai.shared.model_io import (
    RUNTIME_FILE,
    read_runtime,
    safetensors_header,
    tensor_bytes_by_dtype,
    weight_bytes,
    write_runtime,
)


def _checkpoint(folder: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"), metadata=metadata)
    return folder


def test_only_the_float32_tensors_the_source_also_holds_are_cast(tmp_path: Path) -> None:
    emb, norm, w = torch.randn(50, 8), torch.ones(8), torch.randn(8, 8)
    source = _checkpoint(tmp_path / "src", {"embed.weight": emb, "norm.weight": norm, "proj.weight": w})
    artifact = _checkpoint(
        tmp_path / "out",
        {
            "embed.weight": emb,  # left alone by the method: cast
            "norm.weight": norm.half(),  # the method stored it in 16 bit already: kept
            "proj.weight": w.to(torch.int8),  # quantized (same name, other dtype): kept
            "proj.scale": torch.rand(8),  # the method's own float32 (no such source tensor): kept
            "embed.extra": torch.randn(50, 8),  # a float32 the source lacks: kept
        },
        metadata={"format": "pt", "layout": "kept as it was"},
    )
    shrunk = store_unquantized(artifact, source)
    header = safetensors_header(artifact / "model.safetensors")
    dtypes = {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert dtypes == {
        "embed.weight": "BF16", "norm.weight": "F16", "proj.weight": "I8", "proj.scale": "F32", "embed.extra": "F32",
    }  # fmt: skip
    assert header["__metadata__"] == {"format": "pt", "layout": "kept as it was"}
    assert shrunk.tensors == 1 and shrunk.bytes_saved == 50 * 8 * 2
    assert not [p for p in artifact.iterdir() if p.name.startswith(".")], "no temporary file left behind"


def test_a_sharded_index_keeps_its_total_size_true(tmp_path: Path) -> None:
    source = _checkpoint(tmp_path / "src", {"a": torch.randn(4, 4)})
    artifact = _checkpoint(tmp_path / "out", {"a": torch.randn(4, 4)})
    (artifact / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 64}, "weight_map": {"a": "model.safetensors"}})
    )
    store_unquantized(artifact, source, "float16")
    index = json.loads((artifact / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == 32 == weight_bytes(artifact)


def test_weight_bytes_are_the_tensors_not_the_files(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "m", {"w": torch.zeros(10, 10), "q": torch.zeros(7, dtype=torch.int8)})
    (folder / "tokenizer.json").write_text("{}" * 1000)
    assert tensor_bytes_by_dtype(folder) == {"F32": 400, "I8": 7}
    assert weight_bytes(folder) == 407 < (folder / "model.safetensors").stat().st_size


@pytest.mark.parametrize(
    "raw",
    [
        b"\x01\x02",  # shorter than the length prefix
        struct.pack("<Q", 2**40) + b"{}",  # a header longer than the file
        struct.pack("<Q", 4) + b"\xff\xfe{}",  # not UTF-8 JSON
        struct.pack("<Q", 2) + b"[]",  # JSON, but not an object
    ],
    ids=["short", "oversized-header", "not-json", "not-an-object"],
)
def test_a_file_that_is_not_safetensors_is_refused_by_name(tmp_path: Path, raw: bytes) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(raw)
    with pytest.raises(ValueError, match=r"model\.safetensors is not a safetensors file"):
        weight_bytes(tmp_path)


def test_runtime_record_round_trips_and_defaults_to_eager(tmp_path: Path) -> None:
    assert read_runtime(tmp_path) == "eager"
    write_runtime(tmp_path, "compiled")
    assert read_runtime(tmp_path) == "compiled"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b'{"runtime": "cuda-graphs"}', "unknown runtime"),
        (b'["compiled"]', "not a JSON object"),
        (b"\x00\xff", "not a JSON object"),
        (b'{"runtime": "compiled", "pad": "' + b"x" * 5000 + b'"}', "not a runtime record"),
    ],
    ids=["unknown", "list", "binary", "oversized"],
)
def test_a_forged_runtime_record_is_refused(tmp_path: Path, content: bytes, match: str) -> None:
    (tmp_path / RUNTIME_FILE).write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_runtime(tmp_path)


def test_the_latency_child_refuses_a_forged_runtime_record_as_invalid(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    from greenai.services.evaluation.job import latency_of_folder
    from greenai.shared.jobs import JobError

    folder = tmp_path / "artifact"
    shutil.copytree(tiny_model_dir, folder)
    (folder / RUNTIME_FILE).write_text('{"runtime": "turbo"}')
    with pytest.raises(JobError, match="runtime record refused") as refused:
        latency_of_folder(str(folder))
    assert refused.value.reason == "invalid"


def test_torchao_artifact_is_int8_plus_bf16_and_its_bits_per_weight_say_so(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The completion's bits/weight (weight bytes x 8 / source parameters) from what is stored: int8
    projections, the tied embedding and the norms in bfloat16 and nothing in float32 but torchao's scales."""
    target = tmp_path / "artifact"
    out = quantize_to_folder(
        QuantizeJob.parse("torchao_int8", {}, str(tiny_model_dir), str(target), None, 4, 64, 0, "cpu")
    )
    by_dtype = tensor_bytes_by_dtype(target)
    assert set(by_dtype) == {"I8", "BF16", "F32"}
    source = safetensors_header(tiny_model_dir / "model.safetensors")
    plain = sum(
        2 * v["shape"][0] * (v["shape"][1] if len(v["shape"]) > 1 else 1)
        for k, v in source.items()
        if k != "__metadata__" and ("embed" in k or "norm" in k)
    )
    assert by_dtype["BF16"] == plain
    assert out.written.weight_bytes == sum(by_dtype.values())
    bits = out.written.weight_bytes * 8 / out.source_parameters
    assert 8 < bits < 16.5  # float32 embeddings made this ~31 on the tiny model
    assert read_runtime(target) == "compiled" and out.config["runtime"] == "compiled"
