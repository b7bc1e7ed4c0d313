"""Store the tensors a quantization method leaves alone (embeddings, lm_head, norms, biases) in 16 bit.

Every method here writes the float32 tensors it did not quantize as float32: in SmolLM2-135M the tied
embedding alone is 108 MiB of a 166 MiB 4-bit folder. After a method has written its folder, each
safetensors file is rewritten with those tensors cast to bfloat16 (or float16). A tensor counts as
"left alone" when the source checkpoint holds a float32 tensor of the same name and shape and the
artifact still stores it as float32: quantized weights, packed data, scales and zero points either
change name, shape or dtype, so they are never touched. The config keeps the model's compute dtype
(float32), so plain `from_pretrained` casts the 16-bit tensors back at load (AutoRound, GPTQ, AWQ,
torchao): the artifact is smaller on disk and computes as before, up to the 16-bit rounding of those
tensors. bitsandbytes' loader keeps them as stored, so its models run them in bfloat16 (measured on
SmolLM2-135M: bench/true_sizes.py). A method whose loader cannot take them sets
`unquantized_dtype = None`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from greenai.shared.model_io import safetensors_header, tensor_bytes_by_dtype

StorageDtype = Literal["bfloat16", "float16"]
_SAFETENSORS_NAME = {"bfloat16": "BF16", "float16": "F16"}


@dataclass(frozen=True)
class Shrunk:
    tensors: int  # tensors cast to 16 bit
    bytes_saved: int


def _source_float32(source: Path) -> dict[str, list[int]]:
    """Names and shapes of the source checkpoint's float32 tensors, read from the headers only."""
    found: dict[str, list[int]] = {}
    for file in sorted(source.glob("*.safetensors")):
        for name, info in safetensors_header(file).items():
            if name != "__metadata__" and info["dtype"] == "F32":
                found[name] = list(info["shape"])
    return found


def store_unquantized(folder: Path, source: Path, dtype: StorageDtype = "bfloat16") -> Shrunk:
    """Rewrite `folder`'s safetensors files with the float32 tensors the method left unquantized cast
    to `dtype`; file metadata (torchao keeps its tensor-subclass layout there) is kept as it was."""
    import torch
    from safetensors.torch import load_file, save_file

    plain = _source_float32(source)
    cast_to = getattr(torch, dtype)
    count = saved = 0
    for file in sorted(folder.glob("*.safetensors")):
        header = safetensors_header(file)
        names = [
            n for n, info in header.items()
            if n != "__metadata__" and info["dtype"] == "F32" and plain.get(n) == list(info["shape"])
        ]  # fmt: skip
        if not names:
            continue
        tensors = load_file(str(file))
        for name in names:
            tensors[name] = tensors[name].to(cast_to).contiguous()
            saved += tensors[name].numel() * 2
        count += len(names)
        metadata = header.get("__metadata__")
        tmp = file.with_name(f".{file.name}.tmp")
        save_file(tensors, str(tmp), metadata=metadata if isinstance(metadata, dict) else None)
        os.replace(tmp, file)
        _check_written(file, names, _SAFETENSORS_NAME[dtype])
    _update_index(folder)
    return Shrunk(tensors=count, bytes_saved=saved)


def _check_written(file: Path, names: list[str], dtype: str) -> None:
    header = safetensors_header(file)
    wrong = [n for n in names if header[n]["dtype"] != dtype]
    if wrong:
        raise RuntimeError(f"{file.name}: {len(wrong)} tensors were not stored as {dtype} (e.g. {wrong[0]})")


def _update_index(folder: Path) -> None:
    """A sharded checkpoint's index records the total size; keep it true after the rewrite."""
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        return
    data = json.loads(index.read_text())
    data.setdefault("metadata", {})["total_size"] = sum(tensor_bytes_by_dtype(folder).values())
    index.write_text(json.dumps(data, indent=2))
