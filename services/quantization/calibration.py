"""Calibration text for methods that need activations, drawn from the data dir.

Source: WikiText-2 raw (`<data_dir>/wikitext2/wiki.test.raw`), first half only. The second half is
reserved for perplexity evaluation, so calibration never sees the text a model is scored on, and
ARC/other multiple-choice benchmarks are never used for calibration at all.
"""

from __future__ import annotations

import random
from pathlib import Path

CALIBRATION_FRACTION = 0.5
CHARS_PER_TOKEN = 4  # rough for English BPE; samples are cut to seq_len tokens by the method anyway


def wikitext_path(data_dir: Path) -> Path:
    path = data_dir / "wikitext2" / "wiki.test.raw"
    if not path.is_file():
        raise FileNotFoundError(f"calibration text {path} not found (is the data dir right?)")
    return path


def calibration_texts(data_dir: Path, samples: int, seq_len: int, seed: int) -> list[str]:
    text = wikitext_path(data_dir).read_text(encoding="utf-8")
    pool = text[: int(len(text) * CALIBRATION_FRACTION)]
    width = seq_len * CHARS_PER_TOKEN
    if len(pool) <= width:
        raise ValueError("calibration pool is shorter than one sample")
    rng = random.Random(seed)
    out = []
    for _ in range(samples):
        start = rng.randrange(0, len(pool) - width)
        # start at a word boundary so samples are not cut mid-word
        space = pool.find(" ", start)
        start = space + 1 if 0 <= space < start + 50 else start
        out.append(pool[start : start + width])
    return out
