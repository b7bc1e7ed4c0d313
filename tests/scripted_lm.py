"""An lm-eval model whose answers the test writes down, so scoring can be checked by hand:
the whole lm-eval pipeline (prompts, filters, metrics) runs, only the language model is scripted."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from lm_eval.api.model import LM


class ScriptedLM(LM):
    def __init__(
        self,
        prefer: Callable[[str, str], bool] = lambda context, continuation: False,
        generate: Callable[[str], str] = lambda context: "",
    ) -> None:
        super().__init__()
        self.prefer = prefer
        self.generate = generate
        self.contexts: list[str] = []

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        out = []
        for r in requests:
            context, continuation = r.args
            self.contexts.append(context)
            out.append((0.0 if self.prefer(context, continuation) else -10.0, False))
        return out

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        out = []
        for r in requests:
            self.contexts.append(r.args[0])
            out.append(self.generate(r.args[0]))
        return out

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        # ln(10) nats a word: word perplexity 10 exactly
        return [-math.log(10) * len(re.split(r"\s+", r.args[0])) for r in requests]


def per_doc(out: dict[str, Any], task: str, metric: str, filter_name: str = "none") -> list[float]:
    samples = [s for s in out["samples"][task] if s["filter"] == filter_name]
    return [float(s[metric]) for s in sorted(samples, key=lambda s: s["doc_id"])]
