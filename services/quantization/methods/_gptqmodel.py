"""Load → quantize → save through GPTQModel, shared by the GPTQ and AWQ methods.

GPTQModel (ModelCloud) is the maintained successor of auto-gptq and carries the AWQ code that
autoawq used to; both abandoned packages fail here with transformers 5 (see README).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any

from greenai.services.quantization.methods.base import QuantizeContext
from greenai.shared.jobs import JobError


def quantize_with_gptqmodel(quant_config: Any, ctx: QuantizeContext, backend: Any = None) -> None:
    if not ctx.calibration:
        raise JobError("GPTQModel methods need calibration text", "invalid")
    # GPTQModel sizes a CPU worker pool from this; unset, it oversubscribes small machines.
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(max(1, min(os.cpu_count() or 1, 4))))
    from gptqmodel import GPTQModel

    kwargs: dict[str, Any] = {"batch_size": 1}
    if backend is not None:
        kwargs["backend"] = backend
    # GPTQModel writes per-layer logs to ./logs; keep them out of the caller's working directory
    source, output = ctx.source.resolve(), ctx.output.resolve()
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        model = GPTQModel.load(str(source), quant_config, device=ctx.device)
        model.quantize(ctx.calibration, **kwargs)
        model.save(str(output))
