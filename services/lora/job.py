"""The body of a LoRA job; runs in a fresh child process.

- `lora`: a float source (dense or pruned). The adapter is merged, and weights that pruning set
  to zero are zeroed again after the merge, so recovery keeps the sparsity it recovers from.
- `qlora`: a 4-bit NF4 base (bitsandbytes) with the adapter kept beside it, unmerged — merging
  into 4-bit weights would round the update away. The source is quantized to NF4 at load, or used
  as it is when it already is a bitsandbytes 4-bit artifact. The folder holds the 4-bit base
  (`config.json`, weights) and the adapter (`adapter_config.json`, `adapter_model.safetensors`) side by
  side: `AutoModelForCausalLM.from_pretrained(folder)` loads the base from the folder itself and then
  its adapter (transformers' "embedded adapter"), so the artifact names no other path and loads
  wherever it was fetched to.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from greenai.services.lora.train import LoraParams, train_lora
from greenai.shared.artifacts import describe_folder, writing
from greenai.shared.calibration import calibration_texts
from greenai.shared.jobs import JobError

METHODS = ("lora", "qlora")


def parse(method: str, params: dict[str, Any]) -> LoraParams:
    if method not in METHODS:
        raise JobError(f"unknown LoRA method {method!r}; known: {', '.join(METHODS)}", "invalid")
    try:
        return LoraParams.model_validate(params)
    except ValidationError as exc:
        raise JobError(f"{method}: invalid parameters: {exc.errors(include_url=False)}", "invalid") from exc


def source_quantization(source: Path) -> dict[str, Any] | None:
    config = json.loads((source / "config.json").read_text())
    qc = config.get("quantization_config")
    return dict(qc) if qc else None


def lora_to_folder(
    method: str, params: dict[str, Any], source: str, target: str, data_dir: str, samples: int, seed: int, device: str
) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    config = parse(method, params)
    src, target_path = Path(source), Path(target)
    quant = source_quantization(src)
    texts = calibration_texts(Path(data_dir), max(samples, config.steps * config.batch_size), config.seq_len, seed + 1)
    tokenizer = AutoTokenizer.from_pretrained(src)
    with writing(target_path) as tmp:
        if method == "lora":
            if quant is not None:
                raise JobError(
                    f"lora merges into float weights; this source is quantized ({quant.get('quant_method')}): "
                    "use qlora on a bitsandbytes 4-bit base, or run LoRA before quantizing",
                    "invalid",
                )
            model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, device_map=device)
            zeros = {
                n: (m.weight == 0)
                for n, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and (m.weight == 0).any()
            }
            peft_model, result = train_lora(model, tokenizer, texts, config, seed)
            merged = peft_model.merge_and_unload()
            with torch.no_grad():
                for name, module in merged.named_modules():
                    if name in zeros:
                        module.weight[zeros[name]] = 0
            merged.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            kept_as = "merged"
        else:
            if quant is None:
                bnb = BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
                )
                model = AutoModelForCausalLM.from_pretrained(src, quantization_config=bnb, device_map=device)
                model.save_pretrained(tmp)
            elif quant.get("quant_method") == "bitsandbytes" and quant.get("load_in_4bit"):
                model = AutoModelForCausalLM.from_pretrained(src, device_map=device)
                shutil.copytree(src, tmp, dirs_exist_ok=True, copy_function=_link_or_copy)
            else:
                raise JobError(
                    f"qlora trains on a bitsandbytes 4-bit base; this source is {quant.get('quant_method')}-quantized",
                    "unsupported",
                )
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
            peft_model, result = train_lora(model, tokenizer, texts, config, seed)
            peft_model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            # the base is this very folder: no host path in the artifact (transformers loads an adapter
            # embedded beside a complete model from the folder itself, whatever this field says)
            adapter_config = tmp / "adapter_config.json"
            data = json.loads(adapter_config.read_text())
            data["base_model_name_or_path"] = "."
            adapter_config.write_text(json.dumps(data, indent=2))
            kept_as = "adapter"
    written = describe_folder(target_path)
    return {
        "bytes": written.bytes,
        "weight_bytes": written.weight_bytes,
        "sha256": written.sha256,
        "config": config.model_dump(),
        "metrics": {
            "kept_as": kept_as,
            "merged": kept_as == "merged",
            "train_loss_start": result.loss_start,
            "train_loss_end": result.loss_end,
            "trainable_parameters": result.trainable_parameters,
            "steps": config.steps,
        },
    }


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
