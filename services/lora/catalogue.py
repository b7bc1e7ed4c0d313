"""The LoRA agent's catalogue entries: recovery methods that follow a compression step.

Each method carries its own catalogue attributes (`methods/`); this is the registry turned into
what the agent announces, as the quantization agent does with its methods.
"""

from __future__ import annotations

from greenai.events.capabilities import MethodOffer
from greenai.services.lora.methods.auto import METHODS
from greenai.services.lora.methods.base import KIND

__all__ = ["KIND", "offers"]


def offers() -> list[MethodOffer]:
    return [cls.catalogue_entry() for cls in METHODS.values()]
