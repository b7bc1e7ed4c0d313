"""Every pruning method on tiny random models of each family, saved as local folders: it either
writes a model that reloads and generates (at the requested sparsity, for the unstructured ones),
or it is refused as `unsupported` before any weights are read."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from greenai.events import new_event
from greenai.events.jobs import ArtifactRef, JobFailed, PruneRequested
from greenai.services.pruning.agent import PruningAgent
from greenai.services.pruning.job import PruneJob, check_architecture, prune_to_folder
from greenai.services.pruning.methods import auto
from greenai.services.pruning.methods.magnitude import MagnitudePruning
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.jobs import JobError
from greenai.shared.model_layout import UnsupportedArchitecture, family_of, layout_of
from greenai.shared.runtime import JobWorker
from tests.unit.test_model_layout import V, tiny_config

TYPES = ["gpt2", "qwen2", "phi3", "llama", "gemma2", "gpt_neox"]
RUNS: list[tuple[str, dict[str, Any]]] = [
    ("magnitude", {"sparsity": 0.5}),
    ("magnitude", {"sparsity": 0.5, "scope": "global"}),
    ("wanda", {"sparsity": 0.5}),
    ("wanda", {"pattern": "2:4"}),
    ("sparsegpt", {"sparsity": 0.5, "block_size": 32}),
    ("layer_drop", {"layers": 1}),
    ("mlp_channels", {"ratio": 0.5, "multiple_of": 32}),
]
TEXT = (
    "The quick brown fox jumps over the lazy dog. A model that is pruned keeps fewer weights; "
    "one that is quantized keeps them in fewer bits. Both should still write sensible text. "
)


def tiny_tokenizer(folder: Path) -> None:
    """A byte-level BPE of about 300 tokens, trained here: the real ones would outweigh the model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=V, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([TEXT] * 20, trainer)
    eos = "<|endoftext|>"
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, bos_token=eos, pad_token=eos).save_pretrained(folder)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("tiny-models")
    dirs = {}
    for model_type in TYPES:
        folder = root / model_type
        config = tiny_config(model_type)
        config.eos_token_id = config.bos_token_id = config.pad_token_id = 0
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
        assert sum(p.numel() for p in model.parameters()) < 2_000_000
        model.save_pretrained(folder)
        tiny_tokenizer(folder)
        dirs[model_type] = folder
    return dirs


def generates(folder: Path) -> Any:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok("The quick brown fox", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == ids.input_ids.shape[1] + 4
    return model


@pytest.mark.parametrize(("method", "params"), RUNS, ids=[f"{m}-{'-'.join(map(str, p.values()))}" for m, p in RUNS])
@pytest.mark.parametrize("model_type", TYPES)
def test_every_method_prunes_every_family_or_refuses_it_before_loading(
    model_dirs: dict[str, Path], data_dir: Path, tmp_path: Path, model_type: str, method: str, params: dict[str, Any]
) -> None:
    source, target = model_dirs[model_type], tmp_path / "out"
    family = family_of(model_type)
    if family not in auto.get_method(method).families:
        with pytest.raises(JobError) as refused:
            prune_to_folder(PruneJob.parse(method, params, str(source), str(target), str(data_dir), 4, 64, 0, "cpu"))
        assert refused.value.reason == "unsupported" and not target.exists()
        return
    out = prune_to_folder(PruneJob.parse(method, params, str(source), str(target), str(data_dir), 4, 64, 0, "cpu"))
    config = json.loads((target / "config.json").read_text())
    pruned = generates(target)
    layout = layout_of(pruned)
    m = out.metrics
    if method == "layer_drop":
        assert len(layout.blocks) == 1 and m["parameters_after"] < m["parameters_before"]
    elif method == "mlp_channels":
        assert layout.intermediate_size == 64 and m["parameters_after"] < m["parameters_before"]
        key = "n_inner" if model_type == "gpt2" else "intermediate_size"
        assert config[key] == 64
        for block in layout.blocks:
            mlp = layout.mlp(block)
            assert all(p.out_features == parts * 64 for p, parts in mlp.inputs) and mlp.output.in_features == 64
    else:
        assert m["sparsity"] == pytest.approx(0.5, abs=0.01) and m["parameters_after"] == m["parameters_before"]
        for name, proj in layout.linears().items():  # reloaded: the zeros survived the save
            zeros = float((proj.weight == 0).float().mean())
            if params.get("scope") != "global":
                assert zeros == pytest.approx(0.5, abs=0.02), name
        if params.get("pattern") == "2:4":
            for proj in layout.linears().values():
                assert ((proj.weight != 0).reshape(proj.out_features, -1, 4).sum(-1) == 2).all()


class LlamaOnlyMagnitude(MagnitudePruning):
    """A method that announces a single family, to see the refusal path."""

    name = "llama_only_magnitude"
    families: ClassVar[frozenset[str]] = frozenset({"llama"})


def test_a_method_refuses_a_family_it_does_not_announce_before_reading_weights(
    model_dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(auto.METHODS, LlamaOnlyMagnitude.name, LlamaOnlyMagnitude)
    source = tmp_path / "gpt2-broken-weights"
    source.mkdir()
    for f in model_dirs["gpt2"].iterdir():
        (source / f.name).write_bytes(f.read_bytes())
    (source / "model.safetensors").write_bytes(b"not a safetensors file")  # loading it would fail differently
    with pytest.raises(JobError, match="does not support the gpt2 family") as refused:
        prune_to_folder(
            PruneJob.parse(LlamaOnlyMagnitude.name, {}, str(source), str(tmp_path / "o"), None, 4, 64, 0, "cpu")
        )
    assert refused.value.reason == "unsupported" and not (tmp_path / "o").exists()
    assert check_architecture(LlamaOnlyMagnitude.name, model_dirs["llama"]) == "llama"


@pytest.mark.parametrize("model_type", ["mamba", "t5", None])
def test_an_unknown_architecture_is_unsupported_for_every_method_never_an_attribute_error(
    tmp_path: Path, data_dir: Path, model_type: str | None
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text(json.dumps({"model_type": model_type, "hidden_size": 64}))
    (source / "model.safetensors").write_bytes(b"never read")
    for method in auto.METHODS:
        with pytest.raises(UnsupportedArchitecture, match="unsupported architecture") as refused:
            prune_to_folder(
                PruneJob.parse(method, {}, str(source), str(tmp_path / "o"), str(data_dir), 4, 64, 0, "cpu")
            )
        assert refused.value.reason == "unsupported" and repr(model_type) in str(refused.value)
        assert "supported: " in str(refused.value) and not (tmp_path / "o").exists()


async def test_the_agent_fails_an_unknown_architecture_once_as_unsupported_and_serves_on(
    store: EventStore, model_dirs: dict[str, Path], data_dir: Path, tmp_path: Path
) -> None:
    """Through a real JetStream: refused before the weights (which are garbage here) are read,
    final at the first attempt; a GPT-2 job behind it is pruned."""
    unknown = tmp_path / "models" / "mamba-ish"
    unknown.mkdir(parents=True)
    (unknown / "config.json").write_text(json.dumps({"model_type": "mamba", "hidden_size": 64}))
    (unknown / "model.safetensors").write_bytes(b"never read")
    gpt2 = tmp_path / "models" / "gpt2"
    gpt2.mkdir()
    for f in model_dirs["gpt2"].iterdir():
        (gpt2 / f.name).write_bytes(f.read_bytes())
    settings = Settings(work_dir=tmp_path / "work", data_dir=data_dir, model_roots=[tmp_path / "models"])
    for n, (model, method) in enumerate([(unknown, "wanda"), (gpt2, "magnitude")], start=1):
        data = PruneRequested(
            job_id=f"job{n}", episode=n, source=ArtifactRef(kind="base", model=str(model)), method=method, params={}
        )
        await store.append(new_event("exp", data, producer="test", key=f"p{n}"))
    worker = JobWorker(store, PruningAgent(settings).spec(), ack_wait_s=30, max_attempts=3)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.serve(stop))
    try:
        async with asyncio.timeout(120):
            while True:
                events = (await store.read("exp")).envelopes
                done = [e for e in events if e.type == "prune.completed"]
                failed = [e.data for e in events if isinstance(e.data, JobFailed)]
                if done and failed:
                    break
                await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    (failure,) = failed
    assert failure.job_id == "job1" and failure.reason == "unsupported" and failure.final and failure.attempt == 1
    assert "'mamba'" in failure.message and "gpt2" in failure.message
    assert done[0].data.job_id == "job2"


@pytest.mark.parametrize("model_type", TYPES)
def test_removing_channels_that_feed_nothing_leaves_the_mlp_function_unchanged(model_type: str) -> None:
    """Channels whose output column is zero contribute nothing: removing exactly them (Phi-3: from
    both halves of gate_up; GPT-2: Conv1D columns and bias) must not change the MLP's output."""
    from transformers import AutoModelForCausalLM

    from greenai.services.pruning.methods.mlp_channels import keep_channels

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(model_type)).eval()
    layout = layout_of(model)
    block = layout.blocks[0]
    mlp = layout.mlp(block)
    keep = torch.arange(0, 128, 3)
    with torch.no_grad():
        dead = torch.ones(128, dtype=torch.bool)
        dead[keep] = False
        mlp.output.weight[:, dead] = 0
        x = torch.randn(2, 5, 64)
        module = block.mlp
        before = module(x)
        keep_channels(mlp, keep, 128)
        after = module(x)
    assert after.shape == before.shape and torch.allclose(after, before, atol=1e-5)
    assert mlp.output.in_features == len(keep)
