"""torchao int8: dynamic int8 activations × int8 weights (a real CPU speed-up), or int8 weight-only.

Quantized through transformers' TorchAoConfig and saved as safetensors; reloads with plain
`transformers` (torchao installed). Eager, the int8 kernels are slower than float32 on a CPU (0.18x
measured) and on CUDA (1.9 s/token): they pay off under `torch.compile` (2.6x faster than float32 on
this CPU). On CUDA the dynamic scheme is refused: its int8 matmul (`torch._int_mm`) needs more than 16
rows, so batch-1 decoding fails compiled and crawls eager (both measured on a lent H200/H100); the
weight-only scheme runs there. The artifact records the runtime it is meant for (`runtime`, default compiled), and the
evaluation measures its latency that way, the compile time apart; the runtime is a parameter, so the
candidate says which one its figures are for.

torchao converts `nn.Linear` layers only: GPT-2's Conv1D projections stay float32, nothing would be
quantized, so GPT-2 is refused before loading (and any artifact without an int8 tensor after it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from greenai.services.quantization.methods.base import (
    MethodConfig,
    QuantizationMethod,
    QuantizeContext,
    Requirements,
)
from greenai.shared.capabilities import preset
from greenai.shared.jobs import JobError
from greenai.shared.model_io import tensor_bytes_by_dtype, write_runtime
from greenai.shared.model_layout import MODEL_TYPES


class TorchAoInt8Config(MethodConfig):
    scheme: Literal["dynamic", "weight_only"] = "dynamic"
    runtime: Literal["compiled", "eager"] = Field(
        default="compiled", description="how the evaluation runs it: under torch.compile, or eager"
    )


class TorchAoInt8(QuantizationMethod):
    name = "torchao_int8"
    config_class = TorchAoInt8Config
    requirements = Requirements(
        cpu=True, cuda=True, memory_factor=1.5, note="compiled runtime: torch.compile needs a C++ compiler on a CPU"
    )
    # every checked layout whose projections are nn.Linear (GPT-2's are Conv1D: nothing to quantize)
    families = frozenset(t for t, family in MODEL_TYPES.items() if family != "gpt2")
    summary = "torchao int8: dynamic (int8 activations and weights) or weight-only"
    group = "torchao"
    order = 60
    search = ({"scheme": ["dynamic", "weight_only"]},)
    fast_search = search
    presets = (preset(30, "int8 activations and weights, compiled: the CPU speed-up candidate", scheme="dynamic"),)

    def quantize(self, config: MethodConfig, ctx: QuantizeContext) -> None:
        assert isinstance(config, TorchAoInt8Config)
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer, TorchAoConfig

        if config.scheme == "dynamic" and ctx.device.startswith("cuda"):
            raise JobError(
                "torchao int8 dynamic on CUDA: torch._int_mm needs more than 16 rows, so batch-1 decoding fails "
                "under torch.compile and runs at 1.9 s/token eager (measured on an H100/H200); use "
                "scheme='weight_only' on a GPU", "unsupported",
            )  # fmt: skip
        scheme = Int8DynamicActivationInt8WeightConfig() if config.scheme == "dynamic" else Int8WeightOnlyConfig()
        model = AutoModelForCausalLM.from_pretrained(
            ctx.source, quantization_config=TorchAoConfig(scheme), device_map=ctx.device
        )
        model.save_pretrained(ctx.output)
        AutoTokenizer.from_pretrained(ctx.source).save_pretrained(ctx.output)
        if not tensor_bytes_by_dtype(ctx.output).get("I8"):
            raise JobError(
                f"torchao quantized nothing in this {model.config.model_type} model: it converts nn.Linear "
                "layers only", "unsupported",
            )  # fmt: skip
        write_runtime(ctx.output, config.runtime)
