"""The distillation agent's catalogue entry: knowledge distillation as a recovery step after pruning.

Its presets follow a pruning step (`after="prune"`), so the coordinator's search space pairs them with
the pruning presets into prune → distil pipelines, next to prune → LoRA; nothing in the coordinator
names this method.
"""

from __future__ import annotations

from greenai.events.capabilities import MethodOffer, Requirements
from greenai.services.distillation.train import KdParams
from greenai.shared.capabilities import Offered, preset

KIND = "distill"


class Kd(Offered):
    name = "kd"
    config_class = KdParams
    group = "distillation"
    stage = "recover"
    summary = (
        "Knowledge distillation from the uncompressed model: the student learns the teacher's logits "
        "(KL, temperature) on WikiText-2; zeros left by pruning stay zero"
    )
    search = ({"steps": [50, 100, 200], "temperature": [1.0, 2.0]},)
    fast_search = ({"steps": [50], "temperature": [1.0]},)
    presets = (
        preset(85, "distil the pruned model from the dense one (50 steps, logits KL)", after="prune", steps=50),
        preset(145, "longer distillation (100 steps)", after="prune", steps=100),
    )


# teacher and student in float32, the student's gradients and AdamW's two moments
REQUIREMENTS = Requirements(
    cpu=True, cuda=True, memory_factor=5.0, note="loads the experiment's base model as teacher beside the student"
)


def offers() -> list[MethodOffer]:
    return [Kd.offer(KIND, REQUIREMENTS)]
