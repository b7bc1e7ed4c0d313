"""Pruning: masks and scores against hand-computed cases, then every method on a tiny real model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from greenai.services.pruning.job import PruneJob, prune_to_folder
from greenai.services.pruning.methods.auto import get_method
from greenai.services.pruning.methods.base import n_m_mask, unstructured_mask
from greenai.services.pruning.methods.sparsegpt import sparsegpt_prune
from greenai.services.pruning.methods.wanda import wanda_score
from greenai.shared.jobs import JobError


def test_unstructured_mask_prunes_the_lowest_half_of_each_row() -> None:
    score = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    assert unstructured_mask(score, 0.5).tolist() == [[True, True, False, False], [False, False, True, True]]


def test_two_four_mask_keeps_the_two_largest_of_every_four() -> None:
    score = torch.tensor([[1.0, 5.0, 2.0, 4.0, 9.0, 8.0, 7.0, 6.0]])
    assert n_m_mask(score, 2, 4).tolist() == [[True, False, True, False, False, False, True, True]]
    with pytest.raises(JobError, match="multiple of M=4"):
        n_m_mask(torch.ones(2, 6), 2, 4)


def test_wanda_score_weighs_magnitude_by_input_norm() -> None:
    weight = torch.tensor([[1.0, -2.0], [3.0, 4.0]])
    squared_input_norms = torch.tensor([4.0, 1.0])  # ‖X_0‖ = 2, ‖X_1‖ = 1
    assert wanda_score(weight, squared_input_norms).tolist() == [[2.0, 2.0], [6.0, 4.0]]
    # magnitude alone would prune the 1.0; weighted by its input's larger norm it outscores the 1.5
    mask = unstructured_mask(wanda_score(torch.tensor([[1.0, 1.5]]), torch.tensor([4.0, 1.0])), 0.5)
    assert mask.tolist() == [[False, True]]  # 1·2 > 1.5·1: Wanda keeps the smaller weight


def test_sparsegpt_with_uncorrelated_inputs_is_magnitude_pruning() -> None:
    torch.manual_seed(0)
    weight = torch.randn(4, 8)
    pruned = sparsegpt_prune(weight, torch.eye(8) * 3.0, 0.5, None, block=8, damp=0.01)
    kept = pruned != 0
    assert int(kept.sum()) == 16
    threshold = weight.abs().flatten().sort().values[15]
    assert torch.equal(kept, weight.abs() > threshold)
    assert torch.allclose(pruned[kept], weight[kept])  # nothing to compensate without correlations


def test_sparsegpt_compensates_and_beats_magnitude_on_correlated_inputs() -> None:
    torch.manual_seed(0)
    mix = torch.randn(16, 16)
    x = torch.randn(512, 16) @ mix  # strongly correlated input features
    weight = torch.randn(8, 16)
    pruned = sparsegpt_prune(weight, x.t() @ x, 0.5, None, block=16, damp=0.01)
    magnitude = weight.clone()
    magnitude[unstructured_mask(weight.abs(), 0.5)] = 0
    err_sparsegpt = ((x @ (weight - pruned).t()) ** 2).sum()
    err_magnitude = ((x @ (weight - magnitude).t()) ** 2).sum()
    assert (pruned == 0).float().mean() == 0.5
    assert err_sparsegpt < 0.8 * err_magnitude


def test_sparsegpt_two_four() -> None:
    torch.manual_seed(1)
    x = torch.randn(256, 8)
    pruned = sparsegpt_prune(torch.randn(4, 8), x.t() @ x, 0.5, (2, 4), block=8, damp=0.01)
    groups = (pruned != 0).reshape(4, 2, 4).sum(-1)
    assert (groups == 2).all()


def test_magnitude_global_and_per_layer_differ() -> None:
    method = get_method("magnitude")
    model = torch.nn.Module()
    model.model = torch.nn.Module()  # type: ignore[assignment]
    from transformers import LlamaConfig

    model.config = LlamaConfig()  # type: ignore[assignment]  # the model layout finds the blocks by model_type
    layer = torch.nn.Module()
    layer.big = torch.nn.Linear(4, 2, bias=False)
    layer.small = torch.nn.Linear(4, 2, bias=False)
    model.model.layers = torch.nn.ModuleList([layer])  # type: ignore[union-attr]
    with torch.no_grad():
        layer.big.weight.copy_(torch.arange(10.0, 18.0).reshape(2, 4))
        layer.small.weight.copy_(torch.arange(1.0, 9.0).reshape(2, 4))
    from greenai.services.pruning.methods.base import PruneContext

    ctx = PruneContext(None, 8, 0, "cpu")
    method.prune(model, None, method.parse({"sparsity": 0.5, "scope": "global"}), ctx)
    assert (layer.small.weight == 0).all() and (layer.big.weight != 0).all()


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("magnitude", {"sparsity": 0.5}),
        ("wanda", {"sparsity": 0.5}),
        ("wanda", {"pattern": "2:4"}),
        ("sparsegpt", {"sparsity": 0.5}),
        ("sparsegpt", {"pattern": "2:4"}),
    ],
)
def test_unstructured_methods_reach_their_sparsity_and_say_storage_is_dense(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path, method: str, params: dict[str, Any]
) -> None:
    out = prune_to_folder(
        PruneJob.parse(method, params, str(tiny_model_dir), str(tmp_path / "p"), str(data_dir), 4, 64, 0, "cpu")
    )
    m = out.metrics
    assert m["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert m["storage"] == "dense" and m["structured"] is False
    assert m["parameters_after"] == m["parameters_before"]
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "p")
    q = reloaded.model.layers[0].self_attn.q_proj.weight
    assert float((q == 0).float().mean()) == pytest.approx(0.5, abs=0.01)


def test_structured_methods_really_shrink_the_model(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dense = tiny_model_dir.joinpath("model.safetensors").stat().st_size
    out = prune_to_folder(
        PruneJob.parse(
            "layer_drop", {"layers": 1}, str(tiny_model_dir), str(tmp_path / "l"), str(data_dir), 4, 64, 0, "cpu"
        )
    )
    assert json.loads((tmp_path / "l" / "config.json").read_text())["num_hidden_layers"] == 1
    assert out.metrics["parameters_after"] < out.metrics["parameters_before"]
    assert (tmp_path / "l" / "model.safetensors").stat().st_size < dense
    out = prune_to_folder(
        PruneJob.parse(
            "mlp_channels", {"ratio": 0.5}, str(tiny_model_dir), str(tmp_path / "c"), str(data_dir), 4, 64, 0, "cpu"
        )
    )
    assert json.loads((tmp_path / "c" / "config.json").read_text())["intermediate_size"] == 128
    for folder in ("l", "c"):
        model = AutoModelForCausalLM.from_pretrained(tmp_path / folder)
        tok = AutoTokenizer.from_pretrained(tmp_path / folder)
        ids = tok("Hello there", return_tensors="pt")
        assert model.generate(**ids, max_new_tokens=3, do_sample=False).shape[1] == ids.input_ids.shape[1] + 3


def test_bad_pruning_settings_are_job_errors(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(JobError, match="pattern"):
        get_method("wanda").parse({"pattern": "4:2"})
    with pytest.raises(JobError, match="sparsity"):
        get_method("magnitude").parse({"sparsity": 1.5})
    with pytest.raises(JobError, match="cannot remove 2 of 2"):
        prune_to_folder(
            PruneJob.parse(
                "layer_drop", {"layers": 2}, str(tiny_model_dir), str(tmp_path / "x"), str(data_dir), 2, 32, 0, "cpu"
            )
        )
    with pytest.raises(JobError, match="unknown pruning method"):
        get_method("lottery")


def test_the_child_contract_is_typed_and_a_mismatched_config_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    import dataclasses
    import pickle

    job = PruneJob.parse(
        "magnitude", {"sparsity": 0.5}, str(tiny_model_dir), str(tmp_path / "o"), None, 2, 32, 0, "cpu"
    )
    assert pickle.loads(pickle.dumps(job)) == job  # what crosses to the spawned child
    forged = dataclasses.replace(job, method="layer_drop")  # another method's config
    with pytest.raises(JobError, match="carries a") as refused:
        prune_to_folder(forged)
    assert refused.value.reason == "invalid" and not (tmp_path / "o").exists()
