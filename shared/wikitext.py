"""WikiText-2 (raw test file under the data dir), split once for everyone.

The first half is calibration text for quantization and pruning; the second half is where
perplexity is measured. Calibration never sees the text a model is scored on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

SPLIT_FRACTION = 0.5


def wikitext_path(data_dir: Path) -> Path:
    path = data_dir / "wikitext2" / "wiki.test.raw"
    if not path.is_file():
        raise FileNotFoundError(f"WikiText-2 not found at {path} (is the data dir right?)")
    return path


def wikitext_part(data_dir: Path, part: Literal["calibration", "evaluation"]) -> str:
    text = wikitext_path(data_dir).read_text(encoding="utf-8")
    cut = int(len(text) * SPLIT_FRACTION)
    cut = text.find("\n", cut) + 1 or cut  # split at a line boundary
    return text[:cut] if part == "calibration" else text[cut:]
