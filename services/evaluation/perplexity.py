"""Perplexity on the evaluation half of WikiText-2, in non-overlapping windows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from greenai.shared.wikitext import wikitext_part


def wikitext_perplexity(
    model: Any, tokenizer: Any, data_dir: Path, max_tokens: int = 8192, window: int = 512
) -> tuple[float, int]:
    """(perplexity, tokens scored). Each window predicts its tokens after the first from the ones
    before them; the same tokens are scored for every model, so figures compare."""
    import torch

    text = wikitext_part(data_dir, "evaluation")
    ids = tokenizer(text[: max_tokens * 8], return_tensors="pt").input_ids[0][:max_tokens]
    device = next(model.parameters()).device
    nll, scored = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start : start + window].unsqueeze(0).to(device)
            if chunk.shape[1] < 2:
                break
            logits = model(input_ids=chunk).logits.float()
            loss = torch.nn.functional.cross_entropy(logits[0, :-1], chunk[0, 1:], reduction="sum")
            nll += float(loss)
            scored += chunk.shape[1] - 1
    return math.exp(nll / scored), scored
