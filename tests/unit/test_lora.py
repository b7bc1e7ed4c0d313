"""LoRA recovery: merged LoRA keeps the pruned zeros; QLoRA keeps a loadable adapter over NF4."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from greenai.services.lora.job import LoraJob, lora_to_folder
from greenai.services.pruning.job import PruneJob, prune_to_folder
from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.eventstore import EventStore
from greenai.shared.jobs import JobError

FAST = {"steps": 12, "batch_size": 2, "seq_len": 32, "learning_rate": 5e-3}


def test_lora_on_a_pruned_model_learns_merges_and_keeps_its_zeros(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    prune_to_folder(
        PruneJob.parse(
            "wanda", {"sparsity": 0.5}, str(tiny_model_dir), str(tmp_path / "p"), str(data_dir), 4, 64, 0, "cpu"
        )
    )
    out = lora_to_folder(
        LoraJob.parse("lora", FAST, str(tmp_path / "p"), str(tmp_path / "l"), str(data_dir), 4, 0, "cpu")
    )
    m = out.metrics
    assert m["merged"] is True and m["kept_as"] == "merged"
    assert m["train_loss_end"] < m["train_loss_start"]
    assert m["trainable_parameters"] > 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "l")
    for name in ("q_proj", "v_proj"):
        w = getattr(model.model.layers[0].self_attn, name).weight
        assert float((w == 0).float().mean()) == pytest.approx(0.5, abs=0.01), f"{name} lost its sparsity in the merge"


async def test_qlora_artifact_is_self_contained_and_loads_wherever_it_is_fetched_to(
    store: EventStore, tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantize_to_folder(
        QuantizeJob.parse(
            "bnb_4bit", {"quant_type": "nf4"}, str(tiny_model_dir), str(tmp_path / "q"), str(data_dir), 2, 32, 0, "cpu"
        )
    )
    out = lora_to_folder(
        LoraJob.parse("qlora", FAST, str(tmp_path / "q"), str(tmp_path / "a"), str(data_dir), 4, 0, "cpu")
    )
    assert out.metrics["merged"] is False
    adapter = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "."
    assert str(tmp_path) not in "".join(p.read_text(errors="ignore") for p in (tmp_path / "a").glob("*.json"))
    # through the object store to another machine's cache; the producing folder is gone
    uploader = ArtifactStore(store.js, f"b{uuid.uuid4().hex[:8]}", tmp_path / "cache-1")
    artifact = await uploader.put_folder(tmp_path / "a")
    shutil.rmtree(tmp_path / "a")
    shutil.rmtree(tmp_path / "q")
    other = ArtifactStore(store.js, uploader.bucket, tmp_path / "elsewhere" / "cache")
    folder = await other.get_folder(artifact)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert getattr(model, "peft_config", None), "the adapter is attached"
    assert model.config.quantization_config.load_in_4bit
    ids = tok("Hello", return_tensors="pt")
    assert model.generate(**ids, max_new_tokens=2, do_sample=False).shape[1] == ids.input_ids.shape[1] + 2


def test_lora_refuses_what_it_cannot_do(tiny_model_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    quantize_to_folder(
        QuantizeJob.parse(
            "autoround", {"bits": 4}, str(tiny_model_dir), str(tmp_path / "ar"), str(data_dir), 2, 32, 0, "cpu"
        )
    )
    with pytest.raises(JobError, match="use qlora"):
        lora_to_folder(
            LoraJob.parse("lora", FAST, str(tmp_path / "ar"), str(tmp_path / "x"), str(data_dir), 2, 0, "cpu")
        )
    with pytest.raises(JobError, match="bitsandbytes 4-bit base") as info:
        lora_to_folder(
            LoraJob.parse("qlora", FAST, str(tmp_path / "ar"), str(tmp_path / "y"), str(data_dir), 2, 0, "cpu")
        )
    assert info.value.reason == "unsupported"
    with pytest.raises(JobError, match="rank"):
        lora_to_folder(
            LoraJob.parse("lora", {"rank": 0}, str(tiny_model_dir), str(tmp_path / "z"), str(data_dir), 2, 0, "cpu")
        )


def test_lora_methods_announce_themselves_and_refuse_a_bad_source_before_any_load(tmp_path: Path) -> None:
    from greenai.services.lora.catalogue import offers
    from greenai.services.lora.methods.auto import METHODS, get_method
    from greenai.services.lora.train import LoraParams

    assert [o.name for o in offers()] == list(METHODS) == ["lora", "qlora"]
    assert all(o.kind == "lora" and o.stage == "recover" for o in offers())
    assert all(o.params_schema == LoraParams.model_json_schema() for o in offers())
    with pytest.raises(JobError, match="unknown LoRA method") as unknown:
        LoraJob.parse("dora", FAST, "s", "t", "d", 2, 0, "cpu")
    assert unknown.value.reason == "invalid"
    source = tmp_path / "src"
    source.mkdir()
    (source / "model.safetensors").write_bytes(b"never read")
    for config in ("", "[1, 2]", '{"quantization_config": "bnb"}'):  # missing, not an object, malformed
        (source / "config.json").write_text(config)
        for name in METHODS:
            job = LoraJob.parse(name, FAST, str(source), str(tmp_path / "o"), str(tmp_path), 2, 0, "cpu")
            with pytest.raises(JobError) as refused:
                lora_to_folder(job)
            assert refused.value.reason == "invalid" and not (tmp_path / "o").exists()
    (source / "config.json").write_text('{"quantization_config": {"quant_method": "gptq"}}')
    with pytest.raises(JobError, match="use qlora"):
        get_method("lora").check_source({"quant_method": "gptq"})
    get_method("qlora").check_source({"quant_method": "bitsandbytes", "load_in_4bit": True})
