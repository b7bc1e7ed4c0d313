"""Layer-by-layer passes over calibration text, shared by the methods that need activations.

The decoder layers are processed in order. Each layer sees the outputs of the already pruned
layers before it (as in the Wanda and SparseGPT reference code), so later layers adapt to the
error of earlier ones. The inputs to layer 0 are caught once with a forward hook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any


class _Caught(Exception):
    pass


def calibration_batches(tokenizer: Any, texts: list[str], seq_len: int, device: str) -> list[Any]:
    batches = []
    for text in texts:
        ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=seq_len).input_ids
        if ids.shape[1] >= 8:
            batches.append(ids.to(device))
    if not batches:
        raise ValueError("no calibration sample was long enough")
    return batches


def layerwise(
    model: Any, batches: list[Any], on_layer: Callable[[int, Any, list[tuple[Any, dict[str, Any]]]], None]
) -> None:
    """Call `on_layer(index, layer, inputs)` for every decoder layer, where `inputs` are the
    (hidden_states, kwargs) pairs that reach it; then feed the layer's outputs to the next one."""
    import torch

    layers = model.model.layers
    caught: list[tuple[Any, dict[str, Any]]] = []

    def catch(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hidden = args[0] if args else kwargs.pop("hidden_states")
        caught.append((hidden, dict(kwargs)))
        raise _Caught

    handle = layers[0].register_forward_pre_hook(catch, with_kwargs=True)
    try:
        with torch.no_grad():
            for ids in batches:
                with contextlib.suppress(_Caught):
                    model(input_ids=ids, use_cache=False)
    finally:
        handle.remove()

    inputs = caught
    with torch.no_grad():
        for index, layer in enumerate(layers):
            on_layer(index, layer, inputs)
            outputs = []
            for hidden, kwargs in inputs:
                out = layer(hidden, **kwargs)
                outputs.append((out[0] if isinstance(out, tuple) else out, kwargs))
            inputs = outputs


def linear_inputs(layer: Any, inputs: list[tuple[Any, dict[str, Any]]], visit: Callable[[str, Any, Any], None]) -> None:
    """Run the layer on its inputs and call `visit(name, linear, x)` with each linear's input."""
    import torch

    hooks = []
    for name, module in layer.named_modules():
        if isinstance(module, torch.nn.Linear):
            hooks.append(module.register_forward_hook(lambda m, a, o, n=name: visit(n, m, a[0])))
    try:
        with torch.no_grad():
            for hidden, kwargs in inputs:
                layer(hidden, **kwargs)
    finally:
        for h in hooks:
            h.remove()
