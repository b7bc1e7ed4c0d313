"""QLoRA: a 4-bit NF4 base (bitsandbytes) with the adapter kept beside it, unmerged.

Merging into 4-bit weights would round the update away. The source is quantized to NF4 at load,
or used as it is when it already is a bitsandbytes 4-bit artifact. The folder holds the 4-bit base
(`config.json`, weights) and the adapter (`adapter_config.json`, `adapter_model.safetensors`) side by
side: `AutoModelForCausalLM.from_pretrained(folder)` loads the base from the folder itself and then
its adapter (transformers' "embedded adapter"), so the artifact names no other path and loads
wherever it was fetched to.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from greenai.events.capabilities import Requirements
from greenai.services.lora.methods.base import LoraContext, LoraMethod, source_quantization
from greenai.services.lora.train import LoraParams, TrainResult, train_lora
from greenai.shared.capabilities import preset
from greenai.shared.jobs import JobError


def is_bnb_4bit(quantization: dict[str, Any]) -> bool:
    return quantization.get("quant_method") == "bitsandbytes" and bool(quantization.get("load_in_4bit"))


class QLora(LoraMethod):
    name = "qlora"
    kept_as = "adapter"
    summary = "QLoRA: the source quantized to 4-bit NF4, an adapter trained beside it (kept unmerged)"
    search = ({"steps": [50, 100], "rank": [8]},)
    fast_search = None
    presets = (preset(90, "QLoRA recovery on a 4-bit base", after="prune", steps=50, rank=8),)
    requirements = Requirements(cpu=True, cuda=True, memory_factor=2.0)

    def check_source(self, quantization: dict[str, Any] | None) -> None:
        if quantization is not None and not is_bnb_4bit(quantization):
            raise JobError(
                f"qlora trains on a bitsandbytes 4-bit base; this source is "
                f"{quantization.get('quant_method')}-quantized",
                "unsupported",
            )

    def train_to(self, config: LoraParams, tokenizer: Any, ctx: LoraContext) -> TrainResult:
        import torch
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        if source_quantization(ctx.source) is None:
            bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
            model = AutoModelForCausalLM.from_pretrained(ctx.source, quantization_config=bnb, device_map=ctx.device)
            model.save_pretrained(ctx.output)
        else:
            model = AutoModelForCausalLM.from_pretrained(ctx.source, device_map=ctx.device)
            shutil.copytree(ctx.source, ctx.output, dirs_exist_ok=True, copy_function=_link_or_copy)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        peft_model, result = train_lora(model, tokenizer, ctx.texts, config, ctx.seed)
        peft_model.save_pretrained(ctx.output)
        tokenizer.save_pretrained(ctx.output)
        # the base is this very folder: no host path in the artifact (transformers loads an adapter
        # embedded beside a complete model from the folder itself, whatever this field says)
        adapter_config = ctx.output / "adapter_config.json"
        data = json.loads(adapter_config.read_text())
        data["base_model_name_or_path"] = "."
        adapter_config.write_text(json.dumps(data, indent=2))
        return result


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
