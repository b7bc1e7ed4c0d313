"""Calibration text for quantization, pruning and LoRA training: seeded samples from the calibration half of
WikiText-2 (see shared.wikitext). Never the evaluation split of any benchmark, never the hub."""

from __future__ import annotations

import random
from pathlib import Path

from greenai.shared.wikitext import wikitext_part

CHARS_PER_TOKEN = 4  # rough for English BPE; methods cut samples to their sequence length anyway


def calibration_texts(data_dir: Path, samples: int, seq_len: int, seed: int) -> list[str]:
    pool = wikitext_part(data_dir, "calibration")
    width = seq_len * CHARS_PER_TOKEN
    if len(pool) <= width:
        raise ValueError("calibration pool is shorter than one sample")
    rng = random.Random(seed)
    out = []
    for _ in range(samples):
        start = rng.randrange(0, len(pool) - width)
        space = pool.find(" ", start)  # start at a word boundary
        start = space + 1 if 0 <= space < start + 50 else start
        out.append(pool[start : start + width])
    return out
