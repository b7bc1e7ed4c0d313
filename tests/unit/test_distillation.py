"""Knowledge distillation on the tiny model: the loss falls, pruned zeros stay zero, the output reloads
and generates; and the agent refuses what it cannot do (bad parameters, no staged teacher) as a clear,
final job failure before any work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from greenai.events import Envelope, new_event
from greenai.events.jobs import ArtifactRef, step_request_class
from greenai.events.results import ModelStaged
from greenai.services.distillation.agent import DistillationAgent
from greenai.services.distillation.catalogue import KIND, offers
from greenai.services.distillation.job import DistillJob, check_trainable, distill_to_folder, parse
from greenai.services.distillation.train import KdParams, distill
from greenai.shared.calibration import calibration_texts
from greenai.shared.config import Settings
from greenai.shared.eventstore import EventStore
from greenai.shared.jobs import JobError
from tests import factories as f


def sparsify(model: Any, fraction: float = 0.5) -> None:
    """Zero the smallest-magnitude half of every decoder linear weight, as unstructured pruning leaves it."""
    import torch

    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and "layers" in name:
                w = module.weight
                cut = w.abs().flatten().kthvalue(int(w.numel() * fraction)).values
                w[w.abs() <= cut] = 0


@pytest.fixture
def sparse_student(tiny_model_dir: Path, tmp_path: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    sparsify(model)
    folder = tmp_path / "student"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return folder


def test_the_student_moves_towards_the_teacher_and_stays_sparse(
    tiny_model_dir: Path, sparse_student: Path, data_dir: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    teacher = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    student = AutoModelForCausalLM.from_pretrained(sparse_student, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    zeros = {n: p == 0 for n, p in before.items() if "layers" in n and p.dim() == 2}
    params = KdParams(steps=30, learning_rate=3e-3, batch_size=2, seq_len=32, temperature=2.0, hidden_weight=0.5)
    texts = calibration_texts(data_dir, 8, params.seq_len, 1)  # few texts, seen again and again: it must fit them
    result = distill(student, teacher, tokenizer, texts, params, seed=0)

    assert result.loss_end < 0.7 * result.loss_start, result
    assert result.masked_parameters == sum(int(z.sum()) for z in zeros.values()) > 0
    after = dict(student.named_parameters())
    for name, zero in zeros.items():
        assert bool((after[name][zero] == 0).all()), f"{name}: a pruned weight came back"
        assert bool((after[name][~zero] != before[name][~zero]).any()), f"{name}: the kept weights were not trained"
    embeddings = student.get_input_embeddings().weight
    assert torch.equal(embeddings, before["model.embed_tokens.weight"]), "the vocabulary stays the teacher's"


def test_the_output_folder_reloads_and_generates(
    tiny_model_dir: Path, sparse_student: Path, data_dir: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = tmp_path / "out"
    job = DistillJob(
        params=KdParams(steps=3, batch_size=2, seq_len=32), student=str(sparse_student), teacher=str(tiny_model_dir),
        target=str(target), data_dir=str(data_dir), seed=0, device="cpu",
    )  # fmt: skip
    out = distill_to_folder(job)
    assert out.sha256 and out.weight_bytes > 0 and out.config["steps"] == 3
    assert out.metrics["masked_zeros"] > 0 and out.metrics["steps"] == 3
    value = out.as_value()
    assert set(value) >= {"bytes", "weight_bytes", "sha256", "config", "metrics"}
    json.dumps(value)  # what the completion event carries is plain data

    model = AutoModelForCausalLM.from_pretrained(target)
    tokenizer = AutoTokenizer.from_pretrained(target)
    ids = tokenizer("The cat", return_tensors="pt").input_ids
    generated = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == ids.shape[1] + 4
    reloaded_zeros = sum(int((m.weight == 0).sum()) for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert reloaded_zeros >= out.metrics["masked_zeros"]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("kd", {"steps": 0}),
        ("kd", {"temperature": -1}),
        ("kd", {"temperature": "hot"}),
        ("kd", {"steps": 10**9}),
        ("kd", {"teacher": "/etc/passwd"}),  # no parameter may name a teacher: it comes from the log
        ("lora", {}),
        ("../kd", {}),
    ],
)
def test_bad_parameters_are_invalid(method: str, params: dict[str, Any]) -> None:
    with pytest.raises(JobError) as err:
        parse(method, params)
    assert err.value.reason == "invalid"


def test_a_quantized_or_broken_student_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "gptq"}}))
    with pytest.raises(JobError, match="quantized") as err:
        check_trainable(tmp_path, "student")
    assert err.value.reason == "invalid"
    (tmp_path / "config.json").write_text("[1, 2")
    with pytest.raises(JobError, match=r"config\.json"):
        check_trainable(tmp_path, "student")


def test_the_catalogue_announces_recovery_after_pruning() -> None:
    (kd,) = offers()
    assert kd.kind == KIND and kd.stage == "recover" and kd.presets
    assert all(p.after == "prune" for p in kd.presets)
    assert {"steps", "temperature", "hidden_weight"} <= set(kd.params_schema["properties"])
    for preset in kd.presets:
        KdParams.model_validate(preset.params)


def request(exp: str, source: ArtifactRef, params: dict[str, Any] | None = None) -> Envelope:
    job = step_request_class(KIND)(
        job_id=f"{exp}-ep1-s1-distill", episode=1, step=1, source=source, method="kd", params=params or {"steps": 2}
    )
    return new_event(exp, job, producer="t")


def agent_on(store: EventStore, tmp_path: Path, data_dir: Path) -> DistillationAgent:
    agent = DistillationAgent(Settings(stream=store.stream, work_dir=tmp_path / "work", data_dir=data_dir))
    agent.attach_bus(store.js)
    return agent


PRUNED = ArtifactRef(kind="artifact", model="m", artifact=f.artifact("pruned"))


async def test_a_source_whose_experiment_staged_no_model_fails_clearly(
    store: EventStore, tmp_path: Path, data_dir: Path
) -> None:
    agent = agent_on(store, tmp_path, data_dir)
    with pytest.raises(JobError, match=r"no model\.staged") as err:
        await agent.handle(request("unstaged", PRUNED))
    assert err.value.reason == "invalid"
    assert not (tmp_path / "work" / "artifacts").exists(), "nothing was written"


async def test_the_teacher_comes_from_the_log_not_the_message(
    store: EventStore, tmp_path: Path, data_dir: Path
) -> None:
    agent = agent_on(store, tmp_path, data_dir)
    await store.append(f.staged("other"))  # staged model "m" in another experiment: not this one's teacher
    with pytest.raises(JobError, match=r"no model\.staged"):
        await agent.handle(request("mine", PRUNED))
    staged = ModelStaged(model="another-model", artifact=f.artifact("base"), wall_s=1.0)
    await store.append(new_event("mine", staged, producer="t", key="staged"))
    with pytest.raises(JobError, match="staged 'another-model'") as err:
        await agent.handle(request("mine", PRUNED))
    assert err.value.reason == "invalid"
    base = ArtifactRef(kind="base", model="m", artifact=f.artifact("base"))
    with pytest.raises(JobError, match="source is the base model"):
        await agent.handle(request("mine", base))
    with pytest.raises(JobError, match="invalid parameters"):
        await agent.handle(request("mine", PRUNED, {"steps": -1}))


async def test_without_a_data_dir_the_job_is_invalid(store: EventStore, tmp_path: Path) -> None:
    agent = DistillationAgent(Settings(stream=store.stream, work_dir=tmp_path / "work", data_dir=None))
    agent.attach_bus(store.js)
    with pytest.raises(JobError, match="data dir") as err:
        await agent.handle(request("e", PRUNED))
    assert err.value.reason == "invalid"
    shutil.rmtree(tmp_path / "work", ignore_errors=True)
