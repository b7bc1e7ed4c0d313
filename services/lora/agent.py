"""The LoRA agent: takes `lora.requested` jobs (LoRA or QLoRA recovery, `methods/`) and reports `lora.completed`."""

from __future__ import annotations

from collections.abc import Sequence

from greenai.events import Envelope, EventData
from greenai.events.jobs import LoraRequested
from greenai.events.results import LoraCompleted
from greenai.services.lora.catalogue import KIND, offers
from greenai.services.lora.job import LoraJob, lora_to_folder
from greenai.services.lora.methods.auto import get_method
from greenai.services.lora.methods.base import source_quantization
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
        offered = announcer(AGENT, KIND, offers, compute_device(), self.settings)
        return JobSpec(
            AGENT, LoraRequested.TYPE, KIND, self.handle, (LoraCompleted.TYPE,), self.attach, announce=offered
        )

    async def handle(self, request: Envelope) -> Sequence[EventData]:
        job = request.data
        assert isinstance(job, LoraRequested)
        method = get_method(job.method)
        config = method.parse(job.params)
        if self.settings.data_dir is None:
            raise JobError("LoRA training needs text from the data dir: set GREENAI_DATA_DIR", "invalid")
        source = await self.fetch(job.source)
        method.check_source(source_quantization(source))  # config.json only: refused before any weights load
        target = job_output_dir(self.settings, request.experiment_id, job.job_id)
        contract = LoraJob(
            method=job.method, config=config, source=str(source), target=str(target),
            data_dir=str(self.settings.data_dir), samples=job.calibration_samples, seed=job.seed,
            device=compute_device(),
        )  # fmt: skip
        measured = await run_in_child(lora_to_folder, contract, threads=self.settings.torch_threads)
        source_parameters = count_parameters(source)
        artifact = await self.publish(target)
        return [step_completed(LoraCompleted, job, artifact, measured, source_parameters)]
