"""The LoRA agent's catalogue entries: recovery methods that follow a compression step."""

from __future__ import annotations

from greenai.events.capabilities import MethodOffer, Requirements
from greenai.services.lora.train import LoraParams
from greenai.shared.capabilities import preset


def offers() -> list[MethodOffer]:
    schema = LoraParams.model_json_schema()
    return [
        MethodOffer(
            kind="lora", name="lora", stage="recover", group="lora", params_schema=schema,
            summary="LoRA fine-tuning on WikiText-2, merged into the float weights: recovers a pruned model",
            search=[{"steps": [50, 100, 200], "rank": [8, 16]}], fast_search=[{"steps": [50], "rank": [8]}],
            presets=[
                preset(80, "LoRA recovery (50 steps, rank 8)", after="prune", steps=50, rank=8),
                preset(140, "longer LoRA recovery (100 steps)", after="prune", steps=100, rank=8),
            ],
            requirements=Requirements(cpu=True, cuda=True, memory_factor=3.0),
        ),
        MethodOffer(
            kind="lora", name="qlora", stage="recover", group="lora", params_schema=schema,
            summary="QLoRA: the source quantized to 4-bit NF4, an adapter trained beside it (kept unmerged)",
            search=[{"steps": [50, 100], "rank": [8]}], fast_search=None,
            presets=[preset(90, "QLoRA recovery on a 4-bit base", after="prune", steps=50, rank=8)],
            requirements=Requirements(cpu=True, cuda=True, memory_factor=2.0),
        ),
    ]  # fmt: skip
