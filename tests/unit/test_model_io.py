from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from greenai.services.coordinator.spec import infer_spec
from greenai.shared.model_io import ModelNotFoundError, folder_bytes, folder_sha256, resolve_model


def test_aliases_gguf_files_folders_and_hub_ids_resolve(tiny_model_dir: Path) -> None:
    alias = resolve_model("smollm2-135m")
    assert alias.kind == "gguf" and alias.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf = resolve_model(str(Path(alias.location) / str(alias.gguf_file)))
    assert gguf.kind == "gguf"
    assert resolve_model(str(tiny_model_dir)).kind == "local"
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"


@pytest.mark.parametrize("ref", ["no-such-model", "/nonexistent/model.gguf", "a/b/c"])
def test_unknown_models_are_refused_with_what_was_tried(ref: str) -> None:
    with pytest.raises(ModelNotFoundError):
        resolve_model(ref)


def test_a_folder_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        resolve_model(str(tmp_path))


def test_folder_hash_depends_on_content_not_location(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert folder_sha256(copy) == folder_sha256(tiny_model_dir)
    assert folder_bytes(copy) == folder_bytes(tiny_model_dir)
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert folder_sha256(copy) != folder_sha256(tiny_model_dir)


def test_spec_of_a_local_folder(tiny_model_dir: Path) -> None:
    spec = infer_spec(str(tiny_model_dir))
    assert (spec.source, spec.family, spec.architecture) == ("local", "llama", "LlamaForCausalLM")
    assert (spec.num_layers, spec.hidden_size, spec.num_attention_heads, spec.num_key_value_heads) == (2, 128, 4, 2)
    assert spec.tied_embeddings is True
    assert spec.num_parameters is not None and spec.num_parameters > 49152 * 128


@pytest.mark.slow
def test_spec_of_the_real_gguf_model_offline() -> None:
    spec = infer_spec("smollm2-135m")
    assert spec.source == "gguf"
    assert spec.architecture == "LlamaForCausalLM"
    assert (spec.num_layers, spec.hidden_size, spec.intermediate_size) == (30, 576, 1536)
    assert (spec.num_attention_heads, spec.num_key_value_heads, spec.vocab_size) == (9, 3, 49152)
    assert spec.num_parameters == 134_515_008
    assert spec.context_length == 8192


@pytest.mark.slow
def test_the_converted_real_model_reloads_and_matches_its_parameter_count(smollm2_dir: Path) -> None:
    from greenai.shared.model_io import count_parameters

    assert (smollm2_dir / "config.json").is_file()
    assert count_parameters(smollm2_dir) == 134_515_008
