"""LoRA on a float source (dense or pruned), merged into the weights.

Weights that pruning set to zero are zeroed again after the merge, so recovery keeps the sparsity
it recovers from.
"""

from __future__ import annotations

from typing import Any

from greenai.events.capabilities import Requirements
from greenai.services.lora.methods.base import LoraContext, LoraMethod
from greenai.services.lora.train import LoraParams, TrainResult, train_lora
from greenai.shared.capabilities import preset
from greenai.shared.jobs import JobError


class MergedLora(LoraMethod):
    name = "lora"
    kept_as = "merged"
    summary = "LoRA fine-tuning on WikiText-2, merged into the float weights: recovers a pruned model"
    search = ({"steps": [50, 100, 200], "rank": [8, 16]},)
    fast_search = ({"steps": [50], "rank": [8]},)
    presets = (
        preset(80, "LoRA recovery (50 steps, rank 8)", after="prune", steps=50, rank=8),
        preset(140, "longer LoRA recovery (100 steps)", after="prune", steps=100, rank=8),
    )
    requirements = Requirements(cpu=True, cuda=True, memory_factor=3.0)

    def check_source(self, quantization: dict[str, Any] | None) -> None:
        if quantization is not None:
            raise JobError(
                f"lora merges into float weights; this source is quantized ({quantization.get('quant_method')}): "
                "use qlora on a bitsandbytes 4-bit base, or run LoRA before quantizing",
                "invalid",
            )

    def train_to(self, config: LoraParams, tokenizer: Any, ctx: LoraContext) -> TrainResult:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(ctx.source, dtype=torch.float32, device_map=ctx.device)
        zeros = {
            n: (m.weight == 0)
            for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and (m.weight == 0).any()
        }
        peft_model, result = train_lora(model, tokenizer, ctx.texts, config, ctx.seed)
        merged = peft_model.merge_and_unload()
        with torch.no_grad():
            for name, module in merged.named_modules():
                if name in zeros:
                    module.weight[zeros[name]] = 0
        merged.save_pretrained(ctx.output)
        tokenizer.save_pretrained(ctx.output)
        return result
