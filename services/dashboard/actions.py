"""What a person may do from the dashboard, as the `cli` role: request a run, review (approve, edit or
reject) a proposed decision, cancel an experiment.

Each form is checked as the CLI checks its flags, with the CLI's words, before anything is appended:
the benchmark by the coordinator's own admission check, the request by its event model, the id by the
subject rules. Unlike the CLI, nothing is staged from a web form: a path names a file on the machine
running the dashboard, which the person at the browser may not see, so model and benchmark paths are
refused here (`greenai run` stages them).
"""

from __future__ import annotations

import re
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from greenai.events import Envelope, new_event
from greenai.events.experiment import DecisionReviewed, RunRequested, Step
from greenai.events.subjects import check_experiment_id
from greenai.services.dashboard.readmodel import ReadModel
from greenai.shared.config import Settings
from greenai.shared.model_io import ALIASES, HUB_ID

T = TypeVar("T", bound=BaseModel)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")  # a model under the coordinator's models dir
MAX_EDITED_STEPS = 8  # a pipeline a person types: longer than any the agents announce


class Refused(ValueError):
    """A form the CLI would refuse too; the message is what the CLI prints. `status` is the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class RunForm(BaseModel):
    """The run form: the CLI's `run` flags a person sets from a browser."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="smollm2-135m", max_length=200)
    dataset: str = Field(default="arc_easy", max_length=200)
    episodes: int = 3
    limit: int | None = None
    policy: str | None = Field(default=None, max_length=40)
    objective: str = Field(default="balanced", max_length=40)
    space: str = Field(default="full", max_length=20)
    interactive: bool = False
    seed: int = 0
    name: str | None = Field(default=None, max_length=200)


class ReviewForm(BaseModel):
    """Approve, edit (the steps to run instead, as `greenai run --interactive` takes them) or reject."""

    model_config = ConfigDict(extra="forbid")

    episode: int = Field(ge=1)
    proposal: int = Field(ge=1)
    verdict: Literal["approve", "edit", "reject"]
    steps: list[Step] | None = Field(default=None, max_length=MAX_EDITED_STEPS)
    reviewer: str = Field(default="dashboard", min_length=1, max_length=60)
    comment: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _steps_only_to_edit(self) -> ReviewForm:
        if (self.verdict == "edit") != (self.steps is not None):
            raise ValueError("steps go with the verdict 'edit', and only with it")
        return self


class CancelForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)
    requested_by: str = Field(default="dashboard", min_length=1, max_length=60)


def parse(cls: type[T], body: object) -> T:
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        raise Refused(f"bad form: {_errors(exc)}") from None


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors())


def _check_model(model: str) -> str:
    """An alias, a Hub id or a bare name (the coordinator looks it up and refuses an unknown one with
    the reason, as for the CLI); never a path on this machine."""
    if (model.lower() in ALIASES or NAME.match(model) or HUB_ID.match(model)) and ".." not in model:
        return model
    raise Refused(
        f"model {model!r}: the dashboard sends an alias, a Hub id (org/name) or a model name under the "
        "coordinator's models dir; for a folder or file of your own use `greenai run --model PATH`"
    )


def run_request(form: RunForm, settings: Settings) -> tuple[str, RunRequested]:
    """The experiment id and the run request, or `Refused` with the CLI's message."""
    from greenai.cli.run import _new_experiment_id
    from greenai.services.coordinator.admission import Refused as NotAdmitted
    from greenai.services.coordinator.admission import check_benchmarks

    model = _check_model(form.model)
    if "/" in form.dataset or "\\" in form.dataset or form.dataset.endswith((".jsonl", ".yaml")):
        raise Refused(
            f"bad benchmark: {form.dataset!r} is a path; the dashboard sends benchmark names only "
            "(use `greenai run --dataset FILE` for your own)"
        )
    try:
        check_benchmarks(form.dataset, [], settings.data_dir)
    except NotAdmitted as exc:
        raise Refused(f"bad benchmark: {exc}") from None
    experiment_id = form.name or _new_experiment_id(model, form.dataset)
    try:
        check_experiment_id(experiment_id)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    policy = form.policy or ("llm" if settings.llm_configured() else "tpe")
    if policy == "plan":
        raise Refused("bad run request: policy 'plan' needs a plan file: use `greenai run --plan FILE`")
    try:
        request = RunRequested.model_validate(
            {
                "model": model, "dataset": form.dataset, "episodes": form.episodes, "limit": form.limit,
                "policy": policy, "objective": form.objective, "space": form.space, "interactive": form.interactive,
                "seed": form.seed, "requested_by": "dashboard",
            }
        )  # fmt: skip
    except ValidationError as exc:
        raise Refused(f"bad run request: {_errors(exc)}") from None
    return experiment_id, request


def review_event(read: ReadModel, experiment_id: str, form: ReviewForm) -> Envelope:
    """The review of the proposal waiting in the experiment, keyed as the CLI keys it (whoever answers
    first, terminal or page, is the one review in the log)."""
    model = read.get(experiment_id)
    if model is None:
        raise Refused(f"no experiment {experiment_id!r} in the log", 404)
    open_proposal = model.state.open_proposal()
    if open_proposal is None or model.state.closed:
        raise Refused(f"experiment {experiment_id!r} has no proposal waiting for review", 409)
    proposal, review = open_proposal
    if (proposal.episode, proposal.proposal) != (form.episode, form.proposal) or review is not None:
        raise Refused(
            f"proposal {form.proposal} of episode {form.episode} is not the one waiting for review "
            f"(episode {proposal.episode} proposal {proposal.proposal}{', already reviewed' if review else ''})",
            409,
        )
    data = DecisionReviewed(
        episode=form.episode, proposal=form.proposal, verdict=form.verdict, steps=form.steps or [],
        reviewer=form.reviewer, comment=form.comment,
    )  # fmt: skip
    return new_event(experiment_id, data, producer="dashboard", key=f"review:{form.episode}:{form.proposal}")


def cancel_request(read: ReadModel, experiment_id: str, form: CancelForm) -> Envelope:
    """The cancellation `greenai cancel` would append, refused with its words when there is nothing to
    cancel (unknown, failed, completed or already cancelled)."""
    from greenai.cli.cancel import NotCancellable, cancel_event

    model = read.get(experiment_id)
    try:
        return cancel_event(experiment_id, model.state if model else None, form.requested_by, form.reason, "dashboard")
    except NotCancellable as exc:
        raise Refused(str(exc), exc.status) from None
