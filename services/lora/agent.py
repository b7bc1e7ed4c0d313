"""The LoRA agent: takes `lora.requested` jobs (LoRA or QLoRA recovery) and reports `lora.completed`."""

from __future__ import annotations

from collections.abc import Sequence

from greenai.events import Envelope, EventData
from greenai.events.jobs import LoraRequested
from greenai.events.results import Artifact, LoraCompleted
from greenai.services.lora.job import lora_to_folder, parse
from greenai.shared.artifacts import source_folder
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
        source = source_folder(job.source, self.settings.models_dir)
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        target = self.settings.artifacts_dir / request.experiment_id / job.job_id
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
        out = measured.value
        base_params = count_parameters(source)
        return [
            LoraCompleted(
                job_id=job.job_id,
                episode=job.episode,
                step=job.step,
                method=job.method,
                params=out["config"],
                artifact=Artifact(path=str(target), bytes=out["bytes"], sha256=out["sha256"]),
                bits_per_weight=round(out["weight_bytes"] * 8 / base_params, 3) if base_params else None,
                wall_s=round(measured.wall_s, 3),
                peak_rss_mb=round(measured.peak_rss_mb, 1),
                metrics=out["metrics"],
            )
        ]
