"""The pruning agent: takes `prune.requested` jobs, writes pruned artifacts, reports `prune.completed`."""

from __future__ import annotations

from collections.abc import Sequence

from greenai.events import Envelope, EventData
from greenai.events.jobs import PruneRequested
from greenai.events.results import PruneCompleted
from greenai.services.pruning.catalogue import offers
from greenai.services.pruning.job import PruneJob, check_architecture, prune_to_folder
from greenai.services.pruning.methods.auto import get_method
from greenai.shared.artifacts import StepOutput, UsesArtifacts, compute_device, job_output_dir, step_completed
from greenai.shared.capabilities import announcer
from greenai.shared.config import Settings
from greenai.shared.jobs import JobError, run_in_child
from greenai.shared.model_io import folder_bytes
from greenai.shared.runtime import JobSpec

AGENT = "pruning"
MEMORY_FACTOR = 3.0  # the float32 model, its calibration activations and per-layer Hessians


class PruningAgent(UsesArtifacts):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def spec(self) -> JobSpec:
        offered = announcer(AGENT, "prune", lambda: offers(MEMORY_FACTOR), compute_device(), self.settings)
        return JobSpec(
            AGENT, PruneRequested.TYPE, "prune", self.handle, (PruneCompleted.TYPE,), self.attach, announce=offered
        )

    async def handle(self, request: Envelope) -> Sequence[EventData]:
        job = request.data
        assert isinstance(job, PruneRequested)
        config = get_method(job.method).parse(job.params)  # refuse bad settings before loading anything
        source = await self.fetch(job.source)
        check_architecture(job.method, source)  # config.json only: refused before any weights load
        need, have = MEMORY_FACTOR * folder_bytes(source), self.settings.available_memory_bytes()
        if need > have:
            raise JobError(
                f"pruning needs about {need / 2**30:.1f} GiB; {have / 2**30:.1f} GiB available", "unsupported"
            )
        target = job_output_dir(self.settings, request.experiment_id, job.job_id)
        contract = PruneJob(
            method=job.method, config=config, source=str(source), target=str(target),
            data_dir=str(self.settings.data_dir) if self.settings.data_dir else None,
            calibration_samples=job.calibration_samples, calibration_seq_len=job.calibration_seq_len,
            seed=job.seed, device=compute_device(),
        )  # fmt: skip
        measured = await run_in_child(prune_to_folder, contract, threads=self.settings.torch_threads)
        output: StepOutput = measured.value
        artifact = await self.publish(target)
        return [step_completed(PruneCompleted, job, artifact, measured, output.source_parameters)]
