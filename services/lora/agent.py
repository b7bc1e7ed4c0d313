"""The LoRA agent: takes `lora.requested` jobs (LoRA or QLoRA recovery) and reports `lora.completed`."""

from __future__ import annotations

from collections.abc import Sequence

from greenai.events import Envelope, EventData
from greenai.events.jobs import LoraRequested
from greenai.events.results import LoraCompleted
from greenai.services.lora.catalogue import offers
from greenai.services.lora.job import lora_to_folder, parse
from greenai.shared.artifacts import UsesArtifacts, compute_device, job_output_dir, step_completed
from greenai.shared.capabilities import announcer
from greenai.shared.config import Settings
from greenai.shared.jobs import JobError, run_in_child
from greenai.shared.model_io import count_parameters
from greenai.shared.runtime import JobSpec

AGENT = "lora"


class LoraAgent(UsesArtifacts):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def spec(self) -> JobSpec:
        offered = announcer(AGENT, "lora", offers, compute_device(), self.settings)
        return JobSpec(
            AGENT, LoraRequested.TYPE, "lora", self.handle, (LoraCompleted.TYPE,), self.attach, announce=offered
        )

    async def handle(self, request: Envelope) -> Sequence[EventData]:
        job = request.data
        assert isinstance(job, LoraRequested)
        parse(job.method, job.params)
        if self.settings.data_dir is None:
            raise JobError("LoRA training needs text from the data dir: set GREENAI_DATA_DIR", "invalid")
        source = await self.fetch(job.source)
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
        source_parameters = count_parameters(source)
        artifact = await self.publish(target)
        return [step_completed(LoraCompleted, job, artifact, measured, source_parameters)]
