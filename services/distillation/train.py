"""Knowledge distillation: the compressed student learns the uncompressed teacher's next-token
distribution (Hinton et al.; Minitron recovers pruned LLMs this way with a tiny fraction of the
pre-training tokens).

The loss is the KL divergence between the teacher's and the student's softened distributions (× T²,
so the gradient scale does not shrink with the temperature), plus optionally the mean squared error
between their last hidden states. Every student weight outside the embeddings is trained; weights
that pruning set to zero are zeroed again after each step, so a sparse student stays exactly as
sparse as it came.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class KdParams(BaseModel):
    """The `kd` method's parameters; its JSON schema is what the agent announces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(default=50, ge=1, le=100_000, description="Optimizer steps.")
    temperature: float = Field(default=1.0, ge=0.1, le=20.0, description="Softens both distributions.")
    hidden_weight: float = Field(default=0.0, ge=0.0, le=100.0, description="Weight of the last-hidden-state MSE.")
    learning_rate: float = Field(default=2e-4, gt=0, le=1.0)
    batch_size: int = Field(default=4, ge=1, le=256)
    seq_len: int = Field(default=128, ge=8, le=8192)


@dataclass(frozen=True)
class KdResult:
    loss_start: float
    loss_end: float
    trainable_parameters: int
    masked_parameters: int
    train_s: float


def zero_masks(model: Any) -> dict[str, Any]:
    """Where a linear weight is exactly zero (what unstructured pruning left): name -> bool mask."""
    import torch

    return {
        name: module.weight == 0
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and bool((module.weight == 0).any())
    }


def reapply_masks(model: Any, masks: dict[str, Any]) -> None:
    import torch

    with torch.no_grad():
        for name, module in model.named_modules():
            if name in masks:
                module.weight.masked_fill_(masks[name], 0.0)


def trainable_parameters(model: Any) -> list[Any]:
    """Everything but the token embeddings and the output head (tied in small models: training them would
    move the vocabulary the teacher's distribution is expressed in, for little gain in a short run)."""
    heads = [m for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None]
    frozen = {id(p) for m in heads for p in m.parameters()}
    params = []
    for p in model.parameters():
        p.requires_grad_(id(p) not in frozen and p.dtype.is_floating_point)
        if p.requires_grad:
            params.append(p)
    return params


def kd_loss(student_out: Any, teacher_out: Any, attention_mask: Any, params: KdParams) -> Any:
    """Token-mean KL(teacher ‖ student) at temperature T, × T², plus the weighted hidden-state MSE."""
    import torch.nn.functional as F

    t = params.temperature
    s_log = F.log_softmax(student_out.logits.float() / t, dim=-1)
    t_log = F.log_softmax(teacher_out.logits.float() / t, dim=-1)
    per_token = (t_log.exp() * (t_log - s_log)).sum(-1)
    mask = attention_mask.to(per_token.dtype)
    loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0) * t * t
    if params.hidden_weight > 0:
        s_h, t_h = student_out.hidden_states[-1].float(), teacher_out.hidden_states[-1].float()
        mse = ((s_h - t_h) ** 2).mean(-1)
        loss = loss + params.hidden_weight * (mse * mask).sum() / mask.sum().clamp(min=1.0)
    return loss


def distill(student: Any, teacher: Any, tokenizer: Any, texts: list[str], params: KdParams, seed: int) -> KdResult:
    """Train `student` in place towards `teacher` on `texts`, keeping its zero weights zero."""
    import torch

    if student.get_output_embeddings().weight.shape[0] != teacher.get_output_embeddings().weight.shape[0]:
        raise ValueError("teacher and student have different vocabularies: their distributions do not compare")
    torch.manual_seed(seed)
    masks = zero_masks(student)
    trainable = trainable_parameters(student)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate, weight_decay=0.0)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(student.parameters()).device
    hidden = params.hidden_weight > 0
    losses: list[float] = []
    start = time.perf_counter()
    student.train()
    for step in range(params.steps):
        batch_texts = [texts[(step * params.batch_size + i) % len(texts)] for i in range(params.batch_size)]
        batch = tokenizer(
            batch_texts, return_tensors="pt", padding=True, truncation=True, max_length=params.seq_len
        ).to(device)
        with torch.no_grad():
            teacher_out = teacher(**batch, output_hidden_states=hidden)
        student_out = student(**batch, output_hidden_states=hidden)
        loss = kd_loss(student_out, teacher_out, batch.attention_mask, params)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        reapply_masks(student, masks)
        losses.append(float(loss.detach()))
    student.eval()
    window = max(1, min(10, len(losses) // 4))
    return KdResult(
        loss_start=round(statistics.mean(losses[:window]), 5),
        loss_end=round(statistics.mean(losses[-window:]), 5),
        trainable_parameters=sum(p.numel() for p in trainable),
        masked_parameters=sum(int(m.sum()) for m in masks.values()),
        train_s=round(time.perf_counter() - start, 3),
    )
