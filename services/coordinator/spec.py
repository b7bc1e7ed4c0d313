"""Works out a model's specs from its reference, without loading its weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greenai.events.experiment import ModelSpec, public_location
from greenai.shared.model_io import (
    ResolvedModel,
    count_parameters,
    folder_bytes,
    load_config,
    resolve_bus_model,
    resolve_model,
)


def _gguf_parameters(path: Path) -> int:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return int(sum(int(t.n_elements) for t in reader.tensors))


def _hub_parameters(repo_id: str) -> tuple[int | None, int | None]:
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo_id, files_metadata=True)
    params = info.safetensors.total if info.safetensors else None
    size = sum((s.size or 0) for s in (info.siblings or []))
    return params, size or None


def _architecture(config: Any) -> str:
    """Configs read from GGUF carry no `architectures`; the model type's causal-LM class is what loads."""
    if getattr(config, "architectures", None):
        return str(config.architectures[0])
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return str(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(config.model_type, type(config).__name__))


def infer_spec(reference: str, roots: list[Path] | None = None) -> ModelSpec:
    """Raises ModelNotFoundError for a reference this machine cannot reach. With `roots`, the reference
    came over the bus and may only name an alias, a Hub id or a model inside those folders."""
    model: ResolvedModel = resolve_bus_model(reference, roots) if roots is not None else resolve_model(reference)
    config: Any = load_config(model)
    params: int | None
    size: int | None
    if model.kind == "gguf":
        assert model.gguf_file is not None
        gguf = Path(model.location) / model.gguf_file
        params, size = _gguf_parameters(gguf), gguf.stat().st_size
        location = str(gguf)
    elif model.kind == "local":
        params, size, location = count_parameters(model.location), folder_bytes(model.location), model.location
    else:
        params, size = _hub_parameters(model.location)
        location = model.location
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    dtype = getattr(text, "dtype", None) or getattr(text, "torch_dtype", None)
    return ModelSpec(
        model=reference,
        source=model.kind,
        location=public_location(model.kind, location),  # no host path in the event
        architecture=_architecture(config),
        family=str(getattr(config, "model_type", "unknown")),
        num_parameters=params,
        num_layers=getattr(text, "num_hidden_layers", None),
        hidden_size=getattr(text, "hidden_size", None),
        intermediate_size=getattr(text, "intermediate_size", None),
        num_attention_heads=getattr(text, "num_attention_heads", None),
        num_key_value_heads=getattr(text, "num_key_value_heads", None),
        vocab_size=getattr(text, "vocab_size", None),
        context_length=getattr(text, "max_position_embeddings", None),
        dtype=str(dtype).replace("torch.", "") if dtype is not None else None,
        tied_embeddings=getattr(config, "tie_word_embeddings", None),
        size_bytes=size,
    )
