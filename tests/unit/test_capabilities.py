"""The catalogue is announced by the agents: the fold keeps what live agents offer, ignores
announcements in another role's name, and new step kinds travel without a new event class."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from greenai.events import decode, new_event
from greenai.events.capabilities import AgentAnnounced, Hardware, MethodOffer
from greenai.events.jobs import ArtifactRef, step_request_class
from greenai.events.results import step_completion_class
from greenai.projections.capabilities import fold_catalogue
from greenai.services.coordinator.space import Space, configurations
from tests import factories as f

CAST = MethodOffer(kind="cast", name="bf16", group="cast", search=[{}], presets=[])


def test_live_offers_follow_announcements_and_expire() -> None:
    offers = f.agent_offers()
    quant = [m for m in offers.methods if m.kind == "quantize"]
    a = f.announced("quantization", "quantize", quant, interval_s=10)
    catalogue = fold_catalogue([a])
    assert {m.name for m in catalogue.live(a.time).methods} == {m.name for m in quant}
    assert not catalogue.live(a.time + timedelta(seconds=31))  # three beats missed: gone


def test_an_announcement_in_another_roles_name_is_ignored() -> None:
    forged = f.announced("quantization", "cast", [CAST])
    moved = forged.model_copy(update={"experiment_id": "_agents-pruning"})
    assert not fold_catalogue([moved]).live(forged.time)
    with pytest.raises(ValidationError, match="may offer only"):
        AgentAnnounced(
            agent="x", instance="x", kind="prune", methods=[CAST], interval_s=5,
            hardware=Hardware(host="h", device="cpu", cpus=1, memory_bytes=1),
        )  # fmt: skip


def test_oversized_or_unbounded_catalogue_entries_are_refused() -> None:
    with pytest.raises(ValidationError):
        MethodOffer(kind="cast", name="x", group="g", search=[{"p": list(range(100))}])
    with pytest.raises(ValidationError):
        MethodOffer(kind="Cast; rm", name="x", group="g")


def test_a_new_step_kind_needs_no_new_event_class() -> None:
    cls = step_request_class("cast")
    env = new_event(
        "e", cls(job_id="j1", episode=1, source=ArtifactRef(kind="base", model="m"), method="bf16"), producer="t"
    )
    back = decode(env.model_dump_json().encode())
    assert back.type == "cast.requested" and back.data.method == "bf16"  # type: ignore[attr-defined]
    assert step_completion_class("cast").TYPE == "cast.completed"
    with pytest.raises(ValueError):
        step_request_class("run")  # a reserved word is not a step kind


def test_an_announced_kind_enters_the_space_and_its_presets_the_grid() -> None:
    offers = f.agent_offers()
    cast = CAST.model_copy(update={"presets": [f.preset(5, "half precision")]})
    catalogue = fold_catalogue([f.announced("cast", "cast", [cast])])
    both = type(offers)(tuple(sorted([*offers.methods, cast], key=lambda m: (m.kind, m.name))))
    assert catalogue.live(catalogue.instances["cast@h"].at).methods == (cast,)
    space = Space(both)
    assert "cast" in space.shapes()
    assert any(c.steps[0].kind == "cast" for c in configurations(space))


def test_a_method_known_to_fail_on_a_family_is_refused_before_work_and_never_proposed() -> None:
    from transformers import GPT2Config

    from greenai.events.experiment import Step
    from greenai.services.coordinator.feasibility import infeasible
    from greenai.services.quantization.methods.auto import get_method
    from greenai.shared.jobs import JobError

    with pytest.raises(JobError) as refused:
        get_method("gptq").check_family(GPT2Config())
    assert refused.value.reason == "unsupported" and "gpt2" in refused.value.message
    get_method("autoround").check_family(GPT2Config())  # RTN AutoRound runs on GPT-2
    gpt2 = f.SPEC.model_copy(update={"family": "gpt2", "hidden_size": 64, "intermediate_size": 256})
    offers = f.agent_offers()
    assert "does not support model family 'gpt2'" in (
        infeasible((Step(kind="quantize", method="gptq"),), gpt2, offers) or ""
    )
    assert infeasible((Step(kind="prune", method="wanda"),), gpt2, offers) is None


def test_no_coordinator_file_names_a_method() -> None:
    """The catalogue belongs to the agents: the coordinator's code must not keep a copy of it."""
    import re

    from tests.conftest import REPO

    names = {m.name for m in f.agent_offers().methods} - {"lora"}  # 'lora' is also a kind
    for path in (REPO / "services" / "coordinator").rglob("*.py"):
        text = path.read_text()
        found = [n for n in names if re.search(rf"[\"'`]{re.escape(n)}[\"'`]", text)]
        assert not found, f"{path.relative_to(REPO)} names {found}"
