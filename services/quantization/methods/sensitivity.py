"""How much each Linear's quantization to each width would cost, measured on calibration text.

Quantizing one layer alone and re-running the model per (layer, width) would take hundreds of
passes (SmolLM2-135M: 210 layers x 3 widths). Instead, as NVIDIA ModelOpt's AutoQuantize does, one
forward and backward pass per batch gives each layer's input X and output gradient G; the loss
increase of replacing W by its round-to-nearest Q_b(W) is estimated to second order with the
Fisher approximation: 1/2 * sum((G * X (Q_b(W) - W)^T)^2). Q_b is auto-round's own symmetric RTN,
so the estimate describes the weights the artifact will hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LayerScores = dict[str, dict[int, float]]


def quantizable_linears(model: Any) -> dict[str, Any]:
    """The nn.Linear layers inside the decoder blocks (what AutoRound quantizes; lm_head stays)."""
    import torch

    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".layers." in f".{name}" and not name.endswith("lm_head")
    }


def rtn(weight: Any, bits: int, group_size: int) -> Any:
    """Round-to-nearest, symmetric, group-wise: the weights auto-round's iters=0 writes."""
    from auto_round.data_type.int import quant_tensor_sym

    return quant_tensor_sym(weight, bits=bits, group_size=group_size)[0]


def measure_sensitivity(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    widths: Sequence[int],
    group_size: int,
    *,
    batch_size: int = 4,
    max_tokens: int = 512,
) -> LayerScores:
    """Estimated loss increase per layer and width, summed over the calibration tokens."""
    import torch

    if not texts:
        raise ValueError("sensitivity needs calibration text")
    layers = quantizable_linears(model)
    if not layers:
        raise ValueError("the model has no Linear layer inside its decoder blocks")
    scores: LayerScores = {name: dict.fromkeys(widths, 0.0) for name in layers}
    deltas: dict[str, dict[int, Any]] = {}
    with torch.no_grad():
        for name, layer in layers.items():
            w = layer.weight.detach().float()
            deltas[name] = {b: (rtn(w, b, group_size) - w).to(torch.bfloat16) for b in widths}
    inputs: dict[str, Any] = {}

    def save_input(name: str) -> Any:
        def hook(module: Any, args: tuple[Any, ...], output: Any) -> None:
            inputs[name] = args[0].detach()
            if output.requires_grad:
                output.register_hook(lambda grad: accumulate(name, grad))

        return hook

    def accumulate(name: str, grad: Any) -> None:
        with torch.no_grad():
            x = inputs.pop(name)
            x = x.reshape(-1, x.shape[-1]).float()
            g2 = grad.detach().reshape(-1, grad.shape[-1]).float().pow(2)
            for b, delta in deltas[name].items():
                dy = x @ delta.float().T
                scores[name][b] += 0.5 * float((g2 * dy.pow(2)).sum())

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    handles = [layer.register_forward_hook(save_input(name)) for name, layer in layers.items()]
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[start : start + batch_size]), return_tensors="pt", padding=True,
                truncation=True, max_length=max_tokens,
            ).to(model.device)  # fmt: skip
            embeds = model.get_input_embeddings()(batch.input_ids).detach().requires_grad_(True)
            labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
            out = model(inputs_embeds=embeds, attention_mask=batch.attention_mask, labels=labels)
            # summed over tokens, so a batch's weight in the score is its token count
            (out.loss * int((labels[:, 1:] != -100).sum())).backward()
            inputs.clear()
    finally:
        for h in handles:
            h.remove()
        for p in params:
            p.requires_grad_(True)
        model.train(was_training)
    return scores
