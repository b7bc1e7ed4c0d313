"""The distillation agent: takes `distill.requested` jobs and reports `distill.completed`.

It joins like any new agent: it announces its method (`catalogue.py`) and the coordinator's search
space picks it up; the generic step request/completion schemas carry its jobs, so no event class
and no coordinator code names it. Its teacher is the experiment's own base model: the agent reads
the experiment's log for `model.staged` (which only the coordinator may write) and fetches that
artifact by content, so no message can point it at a path or at another model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from greenai.events import Envelope, EventData, MalformedEvent, decode
from greenai.events.jobs import ArtifactRef, StepRequested, step_request_class
from greenai.events.results import ModelStaged, step_completion_class
from greenai.events.subjects import event_subject
from greenai.services.distillation.catalogue import KIND, offers
from greenai.services.distillation.job import DistillJob, check_trainable, distill_to_folder, parse
from greenai.shared.artifacts import UsesArtifacts, compute_device, job_output_dir, step_completed
from greenai.shared.capabilities import announcer
from greenai.shared.config import Settings
from greenai.shared.jobs import JobError, run_in_child
from greenai.shared.model_io import count_parameters
from greenai.shared.runtime import JobSpec

ROLE = "distillation"


class DistillationAgent(UsesArtifacts):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.js: JetStreamContext | None = None

    def spec(self) -> JobSpec:
        request, done = step_request_class(KIND), step_completion_class(KIND)
        offered = announcer(ROLE, KIND, offers, compute_device(), self.settings)
        return JobSpec(ROLE, request.TYPE, KIND, self.handle, (done.TYPE,), self.attach_bus, announce=offered)

    def attach_bus(self, js: Any) -> None:
        self.attach(js)
        self.js = js

    async def staged_base(self, experiment_id: str) -> ModelStaged:
        """The experiment's `model.staged` event, read from its log: the teacher, by content."""
        if self.js is None:
            raise RuntimeError("attach the agent to a bus before it serves jobs")
        subject = event_subject(experiment_id, ModelStaged.TYPE)
        try:
            raw = await self.js.get_last_msg(self.settings.stream, subject)
        except NotFoundError:
            raise JobError(
                f"experiment {experiment_id} has no model.staged event: distillation needs its base model "
                "as the teacher, and the log does not name one",
                "invalid",
            ) from None
        try:
            staged = decode(raw.data or b"")
        except MalformedEvent as exc:
            raise JobError(f"experiment {experiment_id}'s model.staged event is unreadable: {exc}", "invalid") from exc
        if staged.experiment_id != experiment_id or not isinstance(staged.data, ModelStaged):
            raise JobError(f"the log's {subject} holds no model.staged event of experiment {experiment_id}", "invalid")
        return staged.data

    async def handle(self, request: Envelope) -> Sequence[EventData]:
        job = request.data
        assert isinstance(job, StepRequested)
        params = parse(job.method, job.params)
        if self.settings.data_dir is None:
            raise JobError("distillation trains on text from the data dir: set GREENAI_DATA_DIR", "invalid")
        if job.source.kind == "base":
            raise JobError("distillation recovers a compressed model; this step's source is the base model", "invalid")
        staged = await self.staged_base(request.experiment_id)
        if staged.model != job.source.model:
            raise JobError(
                f"the step's source comes from model {job.source.model!r}, the experiment staged {staged.model!r}",
                "invalid",
            )
        student = await self.fetch(job.source)
        check_trainable(student, "student")
        teacher = await self.fetch(ArtifactRef(kind="base", model=staged.model, artifact=staged.artifact))
        target = job_output_dir(self.settings, request.experiment_id, job.job_id)
        contract = DistillJob(
            params=params, student=str(student), teacher=str(teacher), target=str(target),
            data_dir=str(self.settings.data_dir), seed=job.seed, device=compute_device(),
        )  # fmt: skip
        measured = await run_in_child(distill_to_folder, contract, threads=self.settings.torch_threads)
        measured = dataclasses.replace(measured, value=measured.value.as_value())
        source_parameters = count_parameters(student)
        artifact = await self.publish(target)
        return [step_completed(step_completion_class(KIND), job, artifact, measured, source_parameters)]
