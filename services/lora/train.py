"""LoRA and QLoRA recovery training with peft: a short causal-LM fine-tune on calibration text."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LoraParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(default=100, ge=1)
    rank: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=4, ge=1)
    seq_len: int = Field(default=128, ge=8)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])


@dataclass(frozen=True)
class TrainResult:
    loss_start: float
    loss_end: float
    trainable_parameters: int


def train_lora(model: Any, tokenizer: Any, texts: list[str], params: LoraParams, seed: int) -> tuple[Any, TrainResult]:
    """Wrap `model` with LoRA adapters and train them; returns the peft model and the losses."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    peft_model = get_peft_model(
        model,
        LoraConfig(
            r=params.rank,
            lora_alpha=params.alpha,
            lora_dropout=params.dropout,
            target_modules=params.target_modules,
            task_type="CAUSAL_LM",
        ),
    )
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=params.learning_rate)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(peft_model.parameters()).device
    losses: list[float] = []
    peft_model.train()
    for step in range(params.steps):
        batch_texts = [texts[(step * params.batch_size + i) % len(texts)] for i in range(params.batch_size)]
        batch = tokenizer(
            batch_texts, return_tensors="pt", padding=True, truncation=True, max_length=params.seq_len
        ).to(device)
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
        loss = peft_model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    peft_model.eval()
    window = max(1, min(10, len(losses) // 4))
    return peft_model, TrainResult(
        loss_start=round(statistics.mean(losses[:window]), 4),
        loss_end=round(statistics.mean(losses[-window:]), 4),
        trainable_parameters=trainable,
    )
