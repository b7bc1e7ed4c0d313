"""Maps LoRA method names to classes, as quantization's and pruning's registries do."""

from __future__ import annotations

from greenai.services.lora.methods.base import LoraMethod
from greenai.services.lora.methods.lora import MergedLora
from greenai.services.lora.methods.qlora import QLora
from greenai.shared.jobs import JobError

METHODS: dict[str, type[LoraMethod]] = {cls.name: cls for cls in (MergedLora, QLora)}


def get_method(name: str) -> LoraMethod:
    try:
        return METHODS[name]()
    except KeyError:
        raise JobError(f"unknown LoRA method {name!r}; known: {', '.join(sorted(METHODS))}", "invalid") from None
