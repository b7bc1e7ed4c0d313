"""The pruning agent's catalogue entries: what it announces for each of its methods.

Parameters come from each method's own config class; the model types from the layout families the
method declares (`shared.model_layout`). Pruning runs before quantization in a pipeline (`order`).
"""

from __future__ import annotations

from typing import Any

from greenai.events.capabilities import MethodOffer, Requirements
from greenai.services.pruning.methods.auto import METHODS
from greenai.shared.capabilities import preset
from greenai.shared.model_layout import MODEL_TYPES

SPARSITY = ({"sparsity": [0.3, 0.5]}, {"pattern": ["2:4"]})
ENTRIES: dict[str, dict[str, Any]] = {
    "magnitude": dict(
        summary="Unstructured magnitude pruning (per layer or global); no calibration", group="unstructured pruning",
        search=SPARSITY, fast_search=SPARSITY,
    ),
    "wanda": dict(
        summary="Wanda: |weight| x input activation norm, per output row; one calibration pass",
        group="unstructured pruning", search=SPARSITY, fast_search=SPARSITY,
        presets=(preset(60, "Wanda 50 %: activation-aware unstructured sparsity", sparsity=0.5),),
    ),
    "sparsegpt": dict(
        summary="SparseGPT: pruning with second-order weight updates, layer by layer", group="unstructured pruning",
        search=SPARSITY, fast_search=SPARSITY,
    ),
    "layer_drop": dict(
        summary="Drops the decoder layers whose output changes their input least (block influence)",
        group="structured pruning", removes_layers="layers",
        search=({"layers": [2, 4, 6]},), fast_search=({"layers": [2, 4, 6, 8]},),
        presets=(preset(70, "drop the 4 most redundant layers: really smaller and faster", layers=4),),
    ),
    "mlp_channels": dict(
        summary="Removes the MLP channels with the lowest activation-weighted importance", group="structured pruning",
        search=({"ratio": [0.125, 0.25]},), fast_search=({"ratio": [0.125, 0.25, 0.5]},),
    ),
}  # fmt: skip


def offers(memory_factor: float) -> list[MethodOffer]:
    out = []
    for name, cls in METHODS.items():
        entry = ENTRIES.get(name, {})
        types = sorted(t for t, family in MODEL_TYPES.items() if family in cls.families)
        out.append(
            MethodOffer(
                kind="prune",
                name=name,
                stage="compress",
                order=20,
                group=entry.get("group", name),
                summary=entry.get("summary", ""),
                params_schema=cls.config_class.model_json_schema(),
                search=list(entry.get("search", ())),
                fast_search=list(entry.get("fast_search", ())) or None,
                presets=list(entry.get("presets", ())),
                families=types,
                requirements=Requirements(cpu=True, cuda=True, memory_factor=memory_factor),
                removes_layers=entry.get("removes_layers"),
            )
        )
    return out
