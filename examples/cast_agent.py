"""A third-party GreenAI agent in one file: cast a model's weights to bfloat16 or float16.

It joins a running system without any change to GreenAI's code: it has its own NATS identity,
announces what it offers (`agent.announced`: kind `cast`, methods `bf16` and `fp16`, their parameters
and presets), takes `cast.requested` jobs, fetches its input from the object store by content,
uploads its output the same way and reports `cast.completed`. The coordinator's search space, grid
and LLM prompt pick the methods up from the announcement.

    greenai auth add-role cast --kind cast        # once: an identity allowed to publish only its own events
    GREENAI_CREDENTIALS=~/.greenai/auth/cast.nk python examples/cast_agent.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import psutil
from pydantic import BaseModel, ConfigDict

from greenai.events import Envelope, EventData
from greenai.events.jobs import StepRequested, step_request_class
from greenai.events.results import step_completion_class
from greenai.shared.agent_main import run_worker
from greenai.shared.artifacts import (
    StepOutput,
    UsesArtifacts,
    compute_device,
    describe_folder,
    job_output_dir,
    step_completed,
    writing,
)
from greenai.shared.capabilities import Offered, announcer, preset
from greenai.shared.config import Settings
from greenai.shared.jobs import JobError, Measured
from greenai.shared.model_io import count_parameters
from greenai.shared.runtime import JobSpec

ROLE, KIND = "cast", "cast"


class CastConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cast(Offered):
    config_class = CastConfig
    dtype: ClassVar[str]
    group = "cast"
    order = 10  # before pruning and quantization in a pipeline
    search = ({},)
    fast_search = ({},)


class Bf16(Cast):
    name, dtype, summary = "bf16", "bfloat16", "All weights in bfloat16: half the size of float32, same range"
    presets = (preset(5, "bfloat16: half the bytes, float32's range; the cheapest compression there is"),)


class Fp16(Cast):
    name, dtype, summary = "fp16", "float16", "All weights in float16: half the size, narrower range than bfloat16"


METHODS: dict[str, type[Cast]] = {m.name: m for m in (Bf16, Fp16)}


def cast_folder(source: Path, target: Path, dtype: str) -> StepOutput:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype))
    with writing(target) as tmp:  # a half-written folder is never visible under its name
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(source).save_pretrained(tmp)
    return StepOutput(describe_folder(target), config={}, metrics={"dtype": dtype})


class CastAgent(UsesArtifacts):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def spec(self) -> JobSpec:
        request, done = step_request_class(KIND), step_completion_class(KIND)
        offers = announcer(
            ROLE, KIND, lambda: [m.offer(KIND) for m in METHODS.values()], compute_device(), self.settings
        )
        return JobSpec(ROLE, request.TYPE, KIND, self.handle, (done.TYPE,), self.attach, announce=offers)

    async def handle(self, request: Envelope) -> Sequence[EventData]:
        job = request.data
        assert isinstance(job, StepRequested)
        method = METHODS.get(job.method)
        if method is None:
            raise JobError(f"unknown cast method {job.method!r}; known: {', '.join(METHODS)}", "invalid")
        if job.params:
            raise JobError(f"{job.method} takes no parameters, got {sorted(job.params)}", "invalid")
        source = await self.fetch(job.source)
        target = job_output_dir(self.settings, request.experiment_id, job.job_id)
        start = time.perf_counter()
        value = await asyncio.to_thread(cast_folder, source, target, method.dtype)
        measured = Measured(value, time.perf_counter() - start, psutil.Process().memory_info().rss / 2**20)
        artifact = await self.publish(target)
        return [step_completed(step_completion_class(KIND), job, artifact, measured, count_parameters(source))]


if __name__ == "__main__":
    run_worker(ROLE, lambda settings: CastAgent(settings).spec())
