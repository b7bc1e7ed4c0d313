"""The quantization agent: takes `quantize.requested` jobs, writes artifacts, reports `quantize.completed`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from greenai.events import Envelope, EventData
from greenai.events.jobs import QuantizeRequested
from greenai.events.results import QuantizeCompleted
from greenai.services.quantization.job import QuantizeJob, quantize_to_folder
from greenai.services.quantization.methods.auto import METHODS, get_method
from greenai.shared.artifacts import StepOutput, UsesArtifacts, compute_device, job_output_dir, step_completed
from greenai.shared.capabilities import announcer
from greenai.shared.config import Settings
from greenai.shared.jobs import run_in_child
from greenai.shared.model_io import folder_bytes
from greenai.shared.runtime import JobSpec

AGENT = "quantization"


class QuantizationAgent(UsesArtifacts):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.device = compute_device()

    def spec(self) -> JobSpec:
        return JobSpec(
            agent=AGENT,
            request_type=QuantizeRequested.TYPE,
            job_kind="quantize",
            handler=self.handle,
            result_types=(QuantizeCompleted.TYPE,),
            attach=self.attach,
            announce=announcer(
                AGENT, "quantize", lambda: [m.catalogue_entry() for m in METHODS.values()], self.device, self.settings
            ),
        )

    async def handle(self, request: Envelope) -> Sequence[EventData]:
        job = request.data
        assert isinstance(job, QuantizeRequested)
        # Cheap refusals first, in this process: a job that cannot run never costs a model load.
        method = get_method(job.method)
        config = method.parse(job.params)
        method.check_hardware(self.device)
        source = await self.fetch(job.source)
        from transformers import AutoConfig

        model_config = AutoConfig.from_pretrained(source)
        method.check_family(model_config)
        method.check_model(config, model_config)
        method.check_memory(folder_bytes(source), self.settings.available_memory_bytes())
        target = job_output_dir(self.settings, request.experiment_id, job.job_id)
        contract = QuantizeJob(
            method=job.method, config=config, source=str(source), target=str(target),
            data_dir=str(self.settings.data_dir) if self.settings.data_dir else None,
            calibration_samples=job.calibration_samples, calibration_seq_len=job.calibration_seq_len,
            seed=job.seed, device=self.device,
        )  # fmt: skip
        measured = await run_in_child(quantize_to_folder, contract, threads=self.settings.torch_threads)
        _check_loadable(target)
        output: StepOutput = measured.value
        artifact = await self.publish(target)
        return [step_completed(QuantizeCompleted, job, artifact, measured, output.source_parameters)]


def _check_loadable(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    if "quantization_config" not in config:
        raise RuntimeError(f"artifact {folder} has no quantization_config in config.json")
