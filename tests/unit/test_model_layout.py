"""The model layout on tiny random models of every supported family, and its refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from greenai.shared.jobs import JobError
from greenai.shared.model_layout import (
    ALL_FAMILIES,
    MODEL_TYPES,
    UnsupportedArchitecture,
    family_of,
    folder_model_type,
    input_widths,
    layout_of,
    require_family,
    widths,
)

V = 300  # vocabulary: keeps every model far under 2 M parameters


def tiny_config(model_type: str, layers: int = 2) -> Any:
    """A `layers`-block, 64-wide config of `model_type` (MLP width 128 everywhere, GPT-2's n_inner too)."""
    import transformers as tf

    small = {"vocab_size": V, "num_hidden_layers": layers, "num_attention_heads": 4, "max_position_embeddings": 256}
    common = {**small, "hidden_size": 64, "intermediate_size": 128}
    return {
        "llama": lambda: tf.LlamaConfig(**common, num_key_value_heads=2, tie_word_embeddings=True),
        "mistral": lambda: tf.MistralConfig(**common, num_key_value_heads=2, tie_word_embeddings=False),
        "qwen2": lambda: tf.Qwen2Config(**common, num_key_value_heads=2, tie_word_embeddings=True),
        "qwen3": lambda: tf.Qwen3Config(**common, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True),
        "phi3": lambda: tf.Phi3Config(**common, num_key_value_heads=4, pad_token_id=0, tie_word_embeddings=False),
        "gemma": lambda: tf.GemmaConfig(**common, num_key_value_heads=1, head_dim=16),
        "gemma2": lambda: tf.Gemma2Config(**common, num_key_value_heads=2, head_dim=16, sliding_window=16),
        "gemma3_text": lambda: tf.Gemma3TextConfig(**common, num_key_value_heads=2, head_dim=16, sliding_window=16),
        "gpt2": lambda: tf.GPT2Config(vocab_size=V, n_embd=64, n_layer=layers, n_head=4, n_positions=256, n_inner=128),
        "gpt_neox": lambda: tf.GPTNeoXConfig(**common, tie_word_embeddings=False),
    }[model_type]()


def tiny_model(model_type: str) -> Any:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config(model_type))


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_every_supported_type_exposes_blocks_projections_and_widths(model_type: str) -> None:
    model = tiny_model(model_type)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    layout = layout_of(model)
    assert layout.family == family_of(model_type) and layout.family in ALL_FAMILIES
    assert len(layout.blocks) == 2
    assert (layout.hidden_size, layout.intermediate_size) == (64, 128) == widths(model.config)
    x = torch.randn(3, 64)
    for block in layout.blocks:
        attention = layout.attention(block)
        assert attention and all(p.in_features == 64 or p.out_features == 64 for p in attention)
        mlp = layout.mlp(block)
        for proj, parts in mlp.inputs:
            assert proj.weight.shape == (parts * 128, 64)  # [out, in], Conv1D included
            ref = proj.module(x) - (proj.module.bias if proj.module.bias is not None else 0)
            assert torch.allclose(ref, x @ proj.weight.t(), atol=1e-5)  # the view is the real orientation
        assert mlp.output.weight.shape == (64, 128)
        names = set(layout.block_linears(block))
        assert {p.name for p in attention} | {mlp.output.name} | {p.name for p, _ in mlp.inputs} <= names
    linear_names = layout.linear_names()
    assert len(linear_names) == len(set(linear_names)) > 0
    assert not any("embed" in n or "lm_head" in n or "wte" in n for n in linear_names)
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert layout.tied_embeddings is tied


def test_gpt2_conv1d_weight_view_writes_through() -> None:
    layout = layout_of(tiny_model("gpt2"))
    proj = layout.mlp(layout.blocks[0]).inputs[0][0]
    assert proj.transposed and proj.module.weight.shape == (64, 128)
    with torch.no_grad():
        proj.weight[0, :] = 0  # output feature 0 = column 0 of the stored [in, out] weight
    assert (proj.module.weight[:, 0] == 0).all() and (proj.module.weight[:, 1] != 0).any()


def test_keep_outputs_and_inputs_shrink_linear_and_conv1d() -> None:
    for model_type in ("gpt2", "llama"):
        layout = layout_of(tiny_model(model_type))
        mlp = layout.mlp(layout.blocks[0])
        keep = torch.tensor([0, 5, 7])
        proj = mlp.inputs[0][0]
        before = proj.weight[keep].clone()
        proj.keep_outputs(keep)
        assert torch.equal(proj.weight, before) and proj.out_features == 3
        assert proj.module(torch.randn(2, 64)).shape == (2, 3)
        mlp.output.keep_inputs(keep)
        assert mlp.output.module(torch.randn(2, 3)).shape == (2, 64)


def test_set_blocks_fixes_layer_count_cache_slots_and_layer_types() -> None:
    for model_type in ("gpt2", "gemma2", "phi3", "gpt_neox"):
        model = tiny_model(model_type)
        layout = layout_of(model)
        second = layout.blocks[1]
        layout.set_blocks([second], dropped={0})
        assert len(layout.blocks) == 1 and model.config.num_hidden_layers == 1
        assert all(m.layer_idx == 0 for m in second.modules() if isinstance(getattr(m, "layer_idx", None), int))
        if getattr(model.config, "layer_types", None):
            assert len(model.config.layer_types) == 1
        out = model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=3, do_sample=False)
        assert out.shape == (1, 6)


# --- the adversary: anything unknown is refused with a clear message, never an AttributeError ---


@pytest.mark.parametrize("model_type", ["mamba", "", "LLAMA", "llama ", None, 42, ["llama"], "t5"])
def test_unknown_model_types_are_refused_by_name(model_type: object) -> None:
    assert family_of(model_type) is None
    with pytest.raises(UnsupportedArchitecture) as caught:
        require_family(model_type)
    assert caught.value.reason == "unsupported" and isinstance(caught.value, JobError)
    assert repr(model_type) in str(caught.value) and "gpt2" in str(caught.value) and "phi3" in str(caught.value)


def test_a_model_of_unknown_type_or_shape_is_refused_not_an_attribute_error() -> None:
    from transformers import GPT2Model, T5Config, T5ForConditionalGeneration

    t5 = T5ForConditionalGeneration(T5Config(vocab_size=V, d_model=32, d_ff=64, num_layers=1, num_heads=2, d_kv=16))
    with pytest.raises(UnsupportedArchitecture, match="'t5'"):
        layout_of(t5)
    with pytest.raises(UnsupportedArchitecture, match="model_type None"):
        layout_of(torch.nn.Linear(2, 2))
    bare = GPT2Model(tiny_config("gpt2"))  # the right type, but no LM head: no `transformer.h`
    with pytest.raises(UnsupportedArchitecture, match=r"without transformer\.h"):
        layout_of(bare)
    odd = tiny_model("llama")
    layout = layout_of(odd)
    del odd.model.layers[0].mlp.gate_proj  # a checkpoint whose blocks are not what its type says
    with pytest.raises(UnsupportedArchitecture, match="gate_proj"):
        layout.mlp(odd.model.layers[0])


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2]", b'{"model_type": 7}', b"{}", b"\xff\xfe", b'{"model_type": "' + b"x" * (2 << 20) + b'"}'],
)
def test_a_folder_config_is_read_without_weights_and_malformed_ones_are_job_errors(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(JobError):  # invalid (unreadable) or unsupported (unknown type): both final
        require_family(folder_model_type(tmp_path))


def test_folder_model_type_reads_only_the_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "model.safetensors").write_bytes(b"garbage: never read")
    assert family_of(folder_model_type(tmp_path)) == "gpt2"
    with pytest.raises(JobError, match="cannot read"):
        folder_model_type(tmp_path / "missing")


@pytest.mark.parametrize("model_type", sorted(MODEL_TYPES))
def test_layerwise_replays_exactly_what_each_block_sees_in_a_real_forward(model_type: str) -> None:
    """Per-block masks and rotary tables (sliding vs full attention) are caught per block, and
    GPT-2's positional arguments are replayed by name: the pass reproduces the model's own."""
    from greenai.services.pruning.calibrated import layerwise

    config = tiny_config(model_type, layers=3)
    if model_type in ("gemma2", "gemma3_text"):
        config.layer_types = ["full_attention", "sliding_attention", "full_attention"]
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    ids = torch.randint(1, V, (1, 40))  # longer than the sliding window (16)
    with torch.no_grad():
        expected = model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
    seen: list[Any] = []
    layerwise(model, [ids], lambda i, layer, inputs: seen.append(inputs[0][0]))
    assert len(seen) == 3
    for i, hidden in enumerate(seen):
        assert torch.allclose(hidden, expected[i], atol=1e-5), (model_type, i)
    with torch.no_grad():  # the skipped-compute pass left every block's own forward in place
        again = model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
    assert torch.equal(again[1], expected[1])


def test_input_widths_are_what_the_block_linears_really_take() -> None:
    from transformers import AutoModelForCausalLM

    for model_type in sorted(MODEL_TYPES):
        config = tiny_config(model_type)
        if model_type == "qwen3":
            config = type(config)(**{**config.to_dict(), "head_dim": 24})  # o_proj takes 4 × 24 = 96
        model = AutoModelForCausalLM.from_config(config)
        assert input_widths(config) == {p.in_features for p in layout_of(model).linears().values()}, model_type


def test_quantization_group_size_check_sees_the_widths_the_layout_knows() -> None:
    from greenai.services.quantization.methods.base import check_group_size

    qwen3 = tiny_config("qwen3")
    qwen3 = type(qwen3)(**{**qwen3.to_dict(), "head_dim": 24})  # o_proj takes 96 inputs: hidden is 64
    with pytest.raises(JobError, match=r"\[96\]"):
        check_group_size("gptq", 64, qwen3)
    gpt2 = tiny_config("gpt2")
    gpt2.n_inner = None  # GPT-2's MLP is then 4 × 64 = 256 wide; it has no intermediate_size at all
    check_group_size("gptq", 64, gpt2)
    with pytest.raises(JobError, match=r"\[64, 256\]"):
        check_group_size("gptq", 96, gpt2)


def test_require_supported_names_the_method_family_and_what_it_runs_on() -> None:
    from greenai.shared.model_layout import require_supported

    assert require_supported("gptq", None, "qwen3") == "qwen2"
    assert require_supported("gptq", {"llama", "qwen2"}, "mistral") == "llama"
    with pytest.raises(JobError, match="gptq does not support the gpt2 family") as refused:
        require_supported("gptq", {"llama", "qwen2"}, "gpt2")
    assert refused.value.reason == "unsupported" and "llama, qwen2" in str(refused.value)
    with pytest.raises(UnsupportedArchitecture, match="'rwkv'"):
        require_supported("gptq", None, "rwkv")
