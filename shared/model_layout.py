"""Where a decoder-only model keeps its blocks, projections and widths, per architecture family.

Compression methods are written once against this layout instead of against Llama's attribute
names, so a GPT-2 (whose `Conv1D` stores weights as [in, out]) or a Phi-3 (fused qkv and
gate_up projections) is either handled correctly or refused up front with `UnsupportedArchitecture`
— never an `AttributeError` half-way through a job. `family_of` reads only a `model_type` string,
so an agent can refuse a model before it loads any weights.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenai.shared.jobs import JobError


@dataclass(frozen=True)
class FamilySpec:
    """Attribute paths of one family; projection names are relative to a decoder block."""

    blocks: str  # from the *ForCausalLM model to its ModuleList of decoder blocks
    attention: tuple[str, ...]
    mlp_in: tuple[tuple[str, int], ...]  # projections whose outputs are MLP channels, and how many fused parts
    mlp_out: str  # the projection whose inputs are MLP channels
    intermediate_key: str  # config attribute holding the MLP width (None in GPT-2 means 4 × hidden)
    layers_key: str  # config attribute holding the number of blocks


_LLAMA = FamilySpec(
    blocks="model.layers",
    attention=("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"),
    mlp_in=(("mlp.gate_proj", 1), ("mlp.up_proj", 1)),
    mlp_out="mlp.down_proj",
    intermediate_key="intermediate_size",
    layers_key="num_hidden_layers",
)

FAMILIES: dict[str, FamilySpec] = {
    "llama": _LLAMA,
    "qwen2": _LLAMA,
    "gemma": _LLAMA,
    "phi3": FamilySpec(
        blocks="model.layers",
        attention=("self_attn.qkv_proj", "self_attn.o_proj"),
        mlp_in=(("mlp.gate_up_proj", 2),),  # [gate; up] stacked: channel j is rows j and I + j
        mlp_out="mlp.down_proj",
        intermediate_key="intermediate_size",
        layers_key="num_hidden_layers",
    ),
    "gpt2": FamilySpec(
        blocks="transformer.h",
        attention=("attn.c_attn", "attn.c_proj"),
        mlp_in=(("mlp.c_fc", 1),),
        mlp_out="mlp.c_proj",
        intermediate_key="n_inner",
        layers_key="n_layer",
    ),
    "gpt_neox": FamilySpec(
        blocks="gpt_neox.layers",
        attention=("attention.query_key_value", "attention.dense"),
        mlp_in=(("mlp.dense_h_to_4h", 1),),
        mlp_out="mlp.dense_4h_to_h",
        intermediate_key="intermediate_size",
        layers_key="num_hidden_layers",
    ),
}

# config.model_type -> family; only types whose layout was checked on a real (tiny) model
MODEL_TYPES: dict[str, str] = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen2",
    "phi3": "phi3",
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3_text": "gemma",
    "gpt2": "gpt2",
    "gpt_neox": "gpt_neox",
}

ALL_FAMILIES: frozenset[str] = frozenset(FAMILIES)


class UnsupportedArchitecture(JobError):
    """A model type no layout here describes: a job on it cannot succeed, so it is never retried."""

    def __init__(self, model_type: object, detail: str = "") -> None:
        supported = ", ".join(f"{t} ({f})" for t, f in sorted(MODEL_TYPES.items()))
        message = f"unsupported architecture: model_type {model_type!r}{detail}; supported: {supported}"
        super().__init__(message, "unsupported")
        self.model_type = model_type


def family_of(model_type: object) -> str | None:
    """The family of a `config.model_type`, or None: pure, so callers can refuse before loading."""
    return MODEL_TYPES.get(model_type) if isinstance(model_type, str) else None


def require_family(model_type: object) -> str:
    family = family_of(model_type)
    if family is None:
        raise UnsupportedArchitecture(model_type)
    return family


def require_supported(method: str, families: Iterable[str] | None, model_type: object) -> str:
    """The family of `model_type` if a method announcing `families` (None: every family here) runs
    on it; otherwise a JobError `unsupported` naming both — for any agent, before it loads weights."""
    family = require_family(model_type)
    allowed = ALL_FAMILIES if families is None else frozenset(families)
    if family not in allowed:
        raise JobError(
            f"{method} does not support the {family} family (model_type {model_type!r}); "
            f"it supports: {', '.join(sorted(allowed))}",
            "unsupported",
        )
    return family


def folder_model_type(folder: str | Path) -> object:
    """`model_type` from a model folder's config.json, without touching its weights."""
    path = Path(folder) / "config.json"
    try:
        if path.stat().st_size > 1 << 20:
            raise JobError(f"{path} is over 1 MiB: not a model config", "invalid")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JobError(f"cannot read the model config {path}: {exc}", "invalid") from exc
    if not isinstance(data, dict):
        raise JobError(f"{path} is not a JSON object", "invalid")
    return data.get("model_type")


def widths(config: Any) -> tuple[int, int]:
    """(hidden, MLP intermediate) width from a config alone."""
    spec = FAMILIES[require_family(getattr(config, "model_type", None))]
    hidden = int(config.hidden_size)  # GPT-2's config maps hidden_size to n_embd
    inner = getattr(config, spec.intermediate_key, None)
    return hidden, int(inner) if inner is not None else 4 * hidden


def input_widths(config: Any) -> set[int]:
    """Every input width of the block linears, from a config alone: what a quantization group size
    must divide (hidden, MLP, and heads × head_dim where that differs from hidden, as in Qwen3/Gemma)."""
    hidden, inner = widths(config)
    out = {hidden, inner}
    head_dim, heads = getattr(config, "head_dim", None), getattr(config, "num_attention_heads", None)
    if isinstance(head_dim, int) and isinstance(heads, int):
        out.add(head_dim * heads)
    return out


def is_linear(module: Any) -> bool:
    """nn.Linear, or transformers' Conv1D (GPT-2), which is a linear layer with a transposed weight."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, torch.nn.Linear | Conv1D)


@dataclass(frozen=True)
class Projection:
    """A linear layer of a block; `weight` is always [out, in], whatever the module stores."""

    name: str
    module: Any

    @property
    def transposed(self) -> bool:
        return not _is_torch_linear(self.module)

    @property
    def weight(self) -> Any:
        """A view, so in-place edits (masking, `copy_`) write through to the module."""
        w = self.module.weight
        return w.t() if self.transposed else w

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    def keep_outputs(self, keep: Any) -> None:
        """Keep only the output features `keep` (and their biases)."""
        import torch

        m = self.module
        dim = 1 if self.transposed else 0
        m.weight = torch.nn.Parameter(m.weight.data.index_select(dim, keep).clone())
        if m.bias is not None:
            m.bias = torch.nn.Parameter(m.bias.data.index_select(0, keep).clone())
        if self.transposed:
            m.nf = len(keep)
        else:
            m.out_features = len(keep)

    def keep_inputs(self, keep: Any) -> None:
        """Keep only the input features `keep`."""
        import torch

        m = self.module
        dim = 0 if self.transposed else 1
        m.weight = torch.nn.Parameter(m.weight.data.index_select(dim, keep).clone())
        if self.transposed:
            if hasattr(m, "nx"):
                m.nx = len(keep)
        else:
            m.in_features = len(keep)


def _is_torch_linear(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear)


@dataclass(frozen=True)
class MlpProjections:
    inputs: tuple[tuple[Projection, int], ...]  # (projection, fused parts): output rows are channels
    output: Projection  # its input columns are channels


def _get(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _set(root: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    setattr(_get(root, ".".join(parents)) if parents else root, last, value)


class ModelLayout:
    """The layout of one loaded model."""

    def __init__(self, model: Any) -> None:
        config = getattr(model, "config", None)
        model_type = getattr(config, "model_type", None)
        self.family = require_family(model_type)
        self.model_type = str(model_type)
        self.model = model
        self.spec = FAMILIES[self.family]
        try:
            _get(model, self.spec.blocks)
        except AttributeError:
            raise UnsupportedArchitecture(
                model_type, f" (a {type(model).__name__} without {self.spec.blocks}: load it as a causal LM)"
            ) from None

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def blocks(self) -> Any:
        return _get(self.model, self.spec.blocks)

    def set_blocks(self, kept: list[Any], dropped: Iterable[int] = ()) -> None:
        """Replace the block list (blocks `dropped` by old index removed) and everything indexed by it:
        the layer count in the config, per-layer config lists, and each attention's `layer_idx`
        (the KV cache's slot)."""
        import torch

        drop = set(dropped)
        _set(self.model, self.spec.blocks, torch.nn.ModuleList(kept))
        for index, block in enumerate(kept):
            for module in block.modules():
                if isinstance(getattr(module, "layer_idx", None), int):
                    module.layer_idx = index
        config = self.config
        layer_types = getattr(config, "layer_types", None)
        if layer_types and drop:
            config.layer_types = [t for i, t in enumerate(layer_types) if i not in drop]
        setattr(config, self.spec.layers_key, len(kept))

    def _projection(self, block: Any, name: str) -> Projection:
        try:
            module = _get(block, name)
        except AttributeError:
            raise UnsupportedArchitecture(
                self.model_type, f" (its block {type(block).__name__} has no {name})"
            ) from None
        return Projection(name, module)

    def attention(self, block: Any) -> list[Projection]:
        return [self._projection(block, n) for n in self.spec.attention]

    def mlp(self, block: Any) -> MlpProjections:
        inputs = tuple((self._projection(block, n), parts) for n, parts in self.spec.mlp_in)
        return MlpProjections(inputs, self._projection(block, self.spec.mlp_out))

    def block_linears(self, block: Any) -> dict[str, Projection]:
        """Every linear layer in a block, by name relative to it."""
        return {n: Projection(n, m) for n, m in block.named_modules() if n and is_linear(m)}

    def linears(self) -> dict[str, Projection]:
        """Every linear layer inside the decoder blocks, by full name: what pruning and quantization
        touch (embeddings and lm_head live outside the blocks and are never included)."""
        return {
            f"{self.spec.blocks}.{i}.{n}": p
            for i, block in enumerate(self.blocks)
            for n, p in self.block_linears(block).items()
        }

    def linear_names(self) -> list[str]:
        return list(self.linears())

    @property
    def hidden_size(self) -> int:
        return widths(self.config)[0]

    @property
    def intermediate_size(self) -> int:
        return widths(self.config)[1]

    def set_intermediate_size(self, width: int) -> None:
        setattr(self.config, self.spec.intermediate_key, width)

    @property
    def tied_embeddings(self) -> bool:
        out = self.model.get_output_embeddings()
        return out is not None and out.weight is self.model.get_input_embeddings().weight

    def __iter__(self) -> Iterator[Any]:
        return iter(self.blocks)


def layout_of(model: Any) -> ModelLayout:
    return ModelLayout(model)
