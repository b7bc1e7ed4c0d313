"""Layer-by-layer passes over calibration text, shared by the methods that need activations.

The decoder layers are processed in order. Each layer sees the outputs of the already pruned
layers before it (as in the Wanda and SparseGPT reference code), so later layers adapt to the
error of earlier ones. The inputs to every layer are caught once with forward pre-hooks; the layer
list and linear layers come from the model layout (shared.model_layout), so any supported
family works.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

from greenai.shared.model_layout import is_linear, layout_of


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


def _as_kwargs(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(hidden_states, everything else by name): GPT-2 passes its cache and mask positionally."""
    if not args:
        kwargs = dict(kwargs)
        return kwargs.pop("hidden_states"), kwargs
    if len(args) == 1:
        return args[0], dict(kwargs)
    forward = type(layer).forward.__get__(layer)  # the class's: the catching pass swaps the instance's
    bound = inspect.signature(forward).bind_partial(*args, **kwargs)
    named: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(f"{type(layer).__name__} takes *args: cannot replay its inputs by name")
        else:
            named[name] = value
    first = next(iter(bound.signature.parameters))
    return named.pop(first), named


def layerwise(
    model: Any, batches: list[Any], on_layer: Callable[[int, Any, list[tuple[Any, dict[str, Any]]]], None]
) -> None:
    """Call `on_layer(index, layer, inputs)` for every decoder layer, where `inputs` are the
    (hidden_states, kwargs) pairs that reach it; then feed the layer's outputs to the next one.

    Each layer gets its own kwargs (masks and rotary embeddings can differ per layer, e.g. sliding
    and global attention); they are caught in one pass with every layer's compute skipped."""
    import torch

    layers = layout_of(model).blocks
    hidden0: list[Any] = []
    per_layer: list[list[dict[str, Any]]] = [[] for _ in layers]
    last = len(layers) - 1

    def catcher(index: int) -> Callable[..., None]:
        def catch(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            hidden, named = _as_kwargs(module, args, kwargs)
            if index == 0:
                hidden0.append(hidden)
            per_layer[index].append(named)
            if index == last:
                raise _Caught

        return catch

    def passthrough(hidden_states: Any = None, *args: Any, **kwargs: Any) -> Any:
        return hidden_states if hidden_states is not None else kwargs.get("hidden_states")

    handles = [layer.register_forward_pre_hook(catcher(i), with_kwargs=True) for i, layer in enumerate(layers)]
    own = [layer.__dict__.get("forward") for layer in layers]  # e.g. accelerate's device hooks
    for layer in layers:
        layer.forward = passthrough  # instance attribute: only the catching pass skips the compute
    try:
        with torch.no_grad():
            for ids in batches:
                with contextlib.suppress(_Caught):
                    model(input_ids=ids, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
        for layer, forward in zip(layers, own, strict=True):
            if forward is None:
                del layer.forward
            else:
                layer.forward = forward

    with torch.no_grad():
        hiddens = hidden0
        for index, layer in enumerate(layers):
            inputs = list(zip(hiddens, per_layer[index], strict=True))
            on_layer(index, layer, inputs)
            hiddens = []
            for hidden, kwargs in inputs:
                out = layer(hidden, **kwargs)
                hiddens.append(out[0] if isinstance(out, tuple) else out)


def linear_inputs(layer: Any, inputs: list[tuple[Any, dict[str, Any]]], visit: Callable[[str, Any, Any], None]) -> None:
    """Run the layer on its inputs and call `visit(name, linear, x)` with each linear's input
    (nn.Linear and GPT-2's Conv1D alike: both take [..., in])."""
    import torch

    hooks = []
    for name, module in layer.named_modules():
        if name and is_linear(module):
            hooks.append(module.register_forward_hook(lambda m, a, o, n=name: visit(n, m, a[0])))
    try:
        with torch.no_grad():
            for hidden, kwargs in inputs:
                layer(hidden, **kwargs)
    finally:
        for h in hooks:
            h.remove()
