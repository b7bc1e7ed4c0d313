"""torchao int8: dynamic int8 activations × int8 weights (a real CPU speed-up), or int8 weight-only.

Quantized through transformers' TorchAoConfig and saved as safetensors; reloads with plain
`transformers` (torchao installed).
"""

from __future__ import annotations

from typing import Literal

from greenai.services.quantization.methods.base import (
    MethodConfig,
    QuantizationMethod,
    QuantizeContext,
    Requirements,
)
from greenai.shared.capabilities import preset


class TorchAoInt8Config(MethodConfig):
    scheme: Literal["dynamic", "weight_only"] = "dynamic"


class TorchAoInt8(QuantizationMethod):
    name = "torchao_int8"
    config_class = TorchAoInt8Config
    requirements = Requirements(cpu=True, cuda=True, memory_factor=1.5, note="fastest with torch.compile")
    summary = "torchao int8: dynamic (int8 activations and weights) or weight-only"
    group = "torchao"
    order = 60
    search = ({"scheme": ["dynamic", "weight_only"]},)
    fast_search = search
    presets = (preset(30, "int8 activations and weights: the CPU speed-up candidate", scheme="dynamic"),)

    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> None:
        assert isinstance(config, TorchAoInt8Config)
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer, TorchAoConfig

        scheme = Int8DynamicActivationInt8WeightConfig() if config.scheme == "dynamic" else Int8WeightOnlyConfig()
        model = AutoModelForCausalLM.from_pretrained(
            ctx.source, quantization_config=TorchAoConfig(scheme), device_map=ctx.device
        )
        model.save_pretrained(ctx.output)
        AutoTokenizer.from_pretrained(ctx.source).save_pretrained(ctx.output)
