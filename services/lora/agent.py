"""The LoRA agent: takes `lora.requested` jobs (LoRA or QLoRA recovery) and reports `lora.completed`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from greenai.events import Envelope, EventData
from greenai.events.jobs import LoraRequested
from greenai.events.results import LoraCompleted
from greenai.services.lora.job import lora_to_folder, parse
from greenai.shared.artifacts import compute_device, job_output_dir, source_folder, step_completed
from greenai.shared.config import Settings
from greenai.shared.jobs import JobError, run_in_child
from greenai.shared.model_io import count_parameters
from greenai.shared.runtime import JobSpec

AGENT = "lora"


class LoraAgent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def spec(self) -> JobSpec:
        return JobSpec(AGENT, LoraRequested.TYPE, "lora", self.handle, (LoraCompleted.TYPE,))

    async def handle(self, request: Envelope) -> Sequence[EventData]:
        job = request.data
        assert isinstance(job, LoraRequested)
        parse(job.method, job.params)
        if self.settings.data_dir is None:
            raise JobError("LoRA training needs text from the data dir: set GREENAI_DATA_DIR", "invalid")
        source = await asyncio.to_thread(source_folder, job.source, self.settings)
        device = compute_device()
        target = job_output_dir(self.settings, request.experiment_id, job.job_id)
        measured = await run_in_child(
            lora_to_folder,
            job.method,
            job.params,
            str(source),
            str(target),
            str(self.settings.data_dir),
            job.calibration_samples,
            job.seed,
            device,
            threads=self.settings.torch_threads,
        )
        return [step_completed(LoraCompleted, job, target, measured, count_parameters(source))]
