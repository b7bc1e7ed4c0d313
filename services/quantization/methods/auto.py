"""Maps method names to classes, as transformers/quantizers/auto.py does."""

from __future__ import annotations

from greenai.services.quantization.methods.autoround import AutoRoundMethod
from greenai.services.quantization.methods.awq import AWQMethod
from greenai.services.quantization.methods.base import QuantizationMethod
from greenai.services.quantization.methods.bitsandbytes import BitsAndBytes4Bit, BitsAndBytesInt8
from greenai.services.quantization.methods.gptq import GPTQMethod
from greenai.services.quantization.methods.mixed import MixedPrecisionMethod
from greenai.services.quantization.methods.torchao import TorchAoInt8
from greenai.shared.jobs import JobError

METHODS: dict[str, type[QuantizationMethod]] = {
    cls.name: cls
    for cls in (
        AutoRoundMethod,
        GPTQMethod,
        AWQMethod,
        BitsAndBytesInt8,
        BitsAndBytes4Bit,
        TorchAoInt8,
        MixedPrecisionMethod,
    )
}


def get_method(name: str) -> QuantizationMethod:
    try:
        return METHODS[name]()
    except KeyError:
        raise JobError(
            f"unknown quantization method {name!r}; known: {', '.join(sorted(METHODS))}", "invalid"
        ) from None
