"""bitsandbytes: LLM.int8 and 4-bit NF4/FP4 (the base of QLoRA), quantized at load and saved."""

from __future__ import annotations

import json
from typing import Literal

from greenai.services.quantization.methods.base import (
    MethodConfig,
    QuantizationMethod,
    QuantizeContext,
    Requirements,
)
from greenai.shared.capabilities import preset


class Int8Config(MethodConfig):
    threshold: float = 6.0


class FourBitConfig(MethodConfig):
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    compute_dtype: Literal["float32", "bfloat16", "float16"] = "float32"


# bitsandbytes' loader keeps 16-bit stored tensors in 16 bit (the others cast them back to the compute dtype):
# GPT-2's Conv1D blocks then meet bfloat16 activations from bfloat16 embeddings and fail ("expected scalar
# type BFloat16 but found Float"), so these model types keep what bitsandbytes wrote
KEEP_FLOAT32_TYPES = frozenset({"gpt2"})


class _BitsAndBytes(QuantizationMethod):
    def store_unquantized(self, ctx: QuantizeContext) -> None:
        config = json.loads((ctx.source / "config.json").read_text(encoding="utf-8"))
        if config.get("model_type") not in KEEP_FLOAT32_TYPES:
            super().store_unquantized(ctx)


class BitsAndBytesInt8(_BitsAndBytes):
    name = "bnb_int8"
    config_class = Int8Config
    requirements = Requirements(cpu=True, cuda=True, memory_factor=1.5, note="bitsandbytes >= 0.48 has CPU kernels")
    summary = "LLM.int8: 8-bit weights with outlier features kept in 16 bit; no calibration"
    group = "bitsandbytes"
    order = 60
    search = ({},)
    fast_search = search
    presets = (preset(100, "LLM.int8: outlier-aware 8-bit, no calibration"),)

    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> None:
        assert isinstance(config, Int8Config)
        from transformers import BitsAndBytesConfig

        _save_quantized(ctx, BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=config.threshold))


class BitsAndBytes4Bit(_BitsAndBytes):
    name = "bnb_4bit"
    config_class = FourBitConfig
    requirements = Requirements(cpu=True, cuda=True, memory_factor=1.5, note="bitsandbytes >= 0.48 has CPU kernels")
    summary = "bitsandbytes 4-bit (NF4 or FP4), the base QLoRA trains on"
    group = "bitsandbytes"
    order = 60
    search = ({"quant_type": ["nf4", "fp4"]},)
    fast_search = search
    presets = (preset(110, "NF4: QLoRA's 4-bit base", quant_type="nf4"),)

    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> None:
        assert isinstance(config, FourBitConfig)
        import torch
        from transformers import BitsAndBytesConfig

        _save_quantized(
            ctx,
            BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=config.quant_type,
                bnb_4bit_use_double_quant=config.double_quant,
                bnb_4bit_compute_dtype=getattr(torch, config.compute_dtype),
            ),
        )


def _save_quantized(ctx: QuantizeContext, quant_config: object) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(ctx.source, quantization_config=quant_config, device_map=ctx.device)
    model.save_pretrained(ctx.output)
    AutoTokenizer.from_pretrained(ctx.source).save_pretrained(ctx.output)
