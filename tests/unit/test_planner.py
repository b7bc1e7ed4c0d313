from __future__ import annotations

import pytest
from pydantic import ValidationError

from greenai.events import Envelope, new_event
from greenai.events.experiment import (
    DecisionProposed,
    DecisionReviewed,
    EpisodeDecided,
    ExperimentCompleted,
    ExperimentFailed,
    RunRequested,
    Step,
    steps_key,
)
from greenai.events.jobs import EvaluateRequested, LoraRequested, PruneRequested, QuantizeRequested
from greenai.projections.experiment import fold_experiment
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.planner import needs_policy, plan, wants_decision
from greenai.services.coordinator.policies.base import Decision
from greenai.services.coordinator.policies.grid import GridPolicy, ladder
from tests import factories as f

QUANT = Decision.single("quantize", "autoround", {"bits": 4}, "because")


def keys(events: list[Envelope], decision: Decision | None = None) -> list[str]:
    return [p.key for p in plan(fold_experiment("e", events), decision, "grid")]


def test_nothing_happens_before_the_spec_is_known() -> None:
    assert keys([f.run()]) == []


def test_nothing_runs_before_the_base_model_is_staged_and_every_base_ref_names_it() -> None:
    assert keys([f.run(), f.spec()], QUANT) == []
    (baseline,) = plan(fold_experiment("e", [f.run(), f.spec(), f.staged()]), None, "grid")
    assert isinstance(baseline.data, EvaluateRequested)
    assert baseline.data.target.kind == "base" and baseline.data.target.artifact == f.artifact("base")


def test_the_baseline_is_evaluated_before_the_first_decision() -> None:
    events = [f.run(), f.spec(), f.staged()]
    assert not wants_decision(fold_experiment("e", events))
    assert keys(events, QUANT) == ["baseline:evaluate"]
    events += [f.evaluate_requested("e", 0), f.evaluated("e", 0, 0.6, 2, 2, 2)]
    assert wants_decision(fold_experiment("e", events))
    assert keys(events, QUANT) == ["episode:1:decided"]


def test_a_refused_baseline_ends_the_run_before_any_compression() -> None:
    events = [f.run(), f.spec(), f.staged(), f.evaluate_requested("e", 0), f.failed("e", "e-ep0-evaluate", 0)]
    assert not wants_decision(fold_experiment("e", events))
    assert keys(events, QUANT) == ["failed"]


def test_a_decision_becomes_a_job_then_an_evaluation() -> None:
    events = [f.run(), f.spec(), f.staged(), f.evaluate_requested("e", 0), f.decided("e", 1)]
    planned = plan(fold_experiment("e", events), None, "grid")
    assert [p.key for p in planned] == ["episode:1:step:0"]
    assert isinstance(planned[0].data, QuantizeRequested)
    events += [f.quantize_requested("e", 1), f.quantized("e", 1)]
    planned = plan(fold_experiment("e", events), None, "grid")
    assert [p.key for p in planned] == ["episode:1:evaluate"]
    data = planned[0].data
    assert isinstance(data, EvaluateRequested)
    assert data.target.kind == "artifact" and data.target.artifact == f.artifact("1/0")


def test_one_episode_at_a_time_and_completion_after_the_last() -> None:
    events = [
        f.run(episodes=1),
        f.spec(),
        f.staged(),
        f.evaluate_requested("e", 0),
        f.decided("e", 1),
        f.quantize_requested("e", 1),
    ]
    assert not wants_decision(fold_experiment("e", events))
    assert keys(events, QUANT) == []
    events += [f.quantized("e", 1), f.evaluate_requested("e", 1), f.evaluated("e", 1, 0.5, 1, 1, 1)]
    assert keys(events) == []  # the baseline is still being evaluated
    events.append(f.evaluated("e", 0, 0.6, 2, 2, 2))
    planned = plan(fold_experiment("e", events), None, "grid")
    assert [p.key for p in planned] == ["completed"]
    assert isinstance(planned[0].data, ExperimentCompleted)


def test_a_failed_episode_lets_the_run_move_on() -> None:
    events = [
        f.run(),
        f.spec(),
        f.staged(),
        f.evaluate_requested("e", 0),
        f.evaluated("e", 0, 0.6, 2, 2, 2),
        f.decided("e", 1),
        f.quantize_requested("e", 1),
        f.failed("e", "e-ep1-s0-quantize", 1),
    ]
    assert keys(events, QUANT) == ["episode:2:decided"]


def test_a_failed_baseline_fails_the_experiment() -> None:
    events = [f.run(), f.spec(), f.staged(), f.evaluate_requested("e", 0), f.failed("e", "e-ep0-evaluate", 0)]
    planned = plan(fold_experiment("e", events), QUANT, "grid")
    assert [p.key for p in planned] == ["failed"]
    assert isinstance(planned[0].data, ExperimentFailed)


def test_a_closed_experiment_plans_nothing() -> None:
    closed = new_event("e", ExperimentCompleted(reason="done", episodes_run=0), producer="t")
    assert keys([f.run(), f.spec(), f.staged(), closed], QUANT) == []


def test_a_pipeline_runs_its_steps_in_order_on_each_others_output() -> None:
    steps = [
        Step(kind="prune", method="wanda", params={"sparsity": 0.5}),
        Step(kind="quantize", method="autoround", params={"bits": 4}),
        Step(kind="lora", method="lora", params={"steps": 10}),
    ]
    events = [f.run(), f.spec(), f.staged(), f.evaluate_requested("e", 0), f.pipeline("e", 1, steps)]
    planned = plan(fold_experiment("e", events), None, "grid")
    assert [p.key for p in planned] == ["episode:1:step:0"]
    first = planned[0].data
    assert isinstance(first, PruneRequested) and first.source.kind == "base" and first.method == "wanda"

    events += [f.step_requested("e", 1, 0, "prune")]
    assert keys(events) == []  # step 1 is running
    events += [f.step_completed("e", 1, 0, "prune")]
    (second,) = plan(fold_experiment("e", events), None, "grid")
    assert isinstance(second.data, QuantizeRequested)
    assert second.data.step == 1 and second.data.source.artifact == f.artifact("1/0")

    # A coordinator that crashed here resumes at the first step without a completion, and only there.
    events += [f.step_requested("e", 1, 1), f.step_completed("e", 1, 1)]
    (third,) = plan(fold_experiment("e", events), None, "grid")
    assert isinstance(third.data, LoraRequested) and third.data.source.artifact == f.artifact("1/1")
    events += [f.step_requested("e", 1, 2, "lora"), f.step_completed("e", 1, 2, "lora")]
    (evaluate,) = plan(fold_experiment("e", events), None, "grid")
    assert isinstance(evaluate.data, EvaluateRequested) and evaluate.data.target.artifact == f.artifact("1/2")


def test_a_failed_step_fails_the_episode_and_the_rest_never_runs() -> None:
    steps = [Step(kind="prune", method="wanda"), Step(kind="quantize", method="autoround")]
    events = [
        f.run(),
        f.spec(),
        f.staged(),
        f.evaluate_requested("e", 0),
        f.evaluated("e", 0, 0.6, 2, 2, 2),
        f.pipeline("e", 1, steps),
        f.step_requested("e", 1, 0, "prune"),
    ]
    events.append(f.failed("e", "e-ep1-s0-prune", 1))
    state = fold_experiment("e", events)
    assert state.episodes[1].status == "failed"
    assert keys(events, QUANT) == ["episode:2:decided"]


def test_decisions_must_be_consistent() -> None:
    with pytest.raises(ValidationError):
        EpisodeDecided(episode=1, action="compress", steps=[], policy="p", rationale="r")
    with pytest.raises(ValidationError):
        EpisodeDecided(episode=1, action="end", steps=[Step(kind="prune", method="wanda")], policy="p", rationale="r")


def test_grid_policy_walks_the_grid_skipping_what_was_tried() -> None:
    policy, offers = GridPolicy(), f.agent_offers()
    grid = [steps for _, steps, _ in ladder(offers)]
    state = fold_experiment("e", [f.run(), f.spec(), f.staged()])
    first = policy.decide(state, SkillMemory(skills=[]), offers)
    assert first.steps == grid[0] and first.steps[0].params["bits"] == 8  # the agents' own first preset
    state = fold_experiment("e", [f.run(), f.spec(), f.staged(), f.pipeline("e", 1, list(grid[0]))])
    second = policy.decide(state, SkillMemory(skills=[]), offers)
    assert second.steps == grid[1]
    events = [f.run(), f.spec(), f.staged()] + [f.pipeline("e", i + 1, list(d)) for i, d in enumerate(grid)]
    assert policy.decide(fold_experiment("e", events), SkillMemory(skills=[]), offers).action == "end"
    assert any(len(d) == 2 and d[1].kind == "lora" for d in grid), "the grid explores pruning then LoRA recovery"


def _interactive_events() -> list:
    run = new_event(
        "e", RunRequested(model="m", dataset="arc_easy", episodes=1, interactive=True), producer="t", key="run"
    )
    return [run, f.spec(), f.staged(), f.evaluate_requested("e", 0), f.evaluated("e", 0, 0.6, 2, 2, 2)]


def test_interactive_runs_propose_then_wait_for_a_person() -> None:
    events = _interactive_events()
    state = fold_experiment("e", events)
    assert needs_policy(state)
    (proposal,) = plan(state, QUANT, "grid")
    assert isinstance(proposal.data, DecisionProposed) and proposal.key == "episode:1:proposal:1"
    events.append(new_event("e", proposal.data, producer="t"))
    state = fold_experiment("e", events)
    assert not needs_policy(state) and plan(state, None, "grid") == []  # waiting for the review

    review = DecisionReviewed(episode=1, proposal=1, verdict="reject", reviewer="ada")
    events.append(new_event("e", review, producer="cli"))
    state = fold_experiment("e", events)
    assert needs_policy(state)
    assert steps_key(proposal.data.steps) in state.tried_keys(), "policies will not offer it again"
    other = Decision.single("quantize", "gptq", {"bits": 4}, "second try")
    (second,) = plan(state, other, "grid")
    assert isinstance(second.data, DecisionProposed) and second.data.proposal == 2
    events.append(new_event("e", second.data, producer="t"))
    events.append(
        new_event("e", DecisionReviewed(episode=1, proposal=2, verdict="approve", reviewer="ada"), producer="cli")
    )
    (decided,) = plan(fold_experiment("e", events), None, "grid")
    assert isinstance(decided.data, EpisodeDecided)
    assert decided.data.steps[0].method == "gptq" and "approved by ada" in decided.data.rationale


def test_an_edited_decision_runs_the_persons_steps() -> None:
    events = _interactive_events()
    (proposal,) = plan(fold_experiment("e", events), QUANT, "grid")
    events.append(new_event("e", proposal.data, producer="t"))
    mine = [Step(kind="prune", method="wanda", params={"sparsity": 0.3})]
    events.append(
        new_event(
            "e", DecisionReviewed(episode=1, proposal=1, verdict="edit", steps=mine, reviewer="bo"), producer="cli"
        )
    )
    (decided,) = plan(fold_experiment("e", events), None, "grid")
    assert isinstance(decided.data, EpisodeDecided)
    assert decided.data.steps == mine and decided.data.policy == "human" and "edited by bo" in decided.data.rationale


def test_front_candidates_are_promoted_to_a_larger_evaluation_once() -> None:
    from greenai.events.results import EvaluateCompleted

    events = [
        f.run(episodes=2, promote_limit=50),
        f.spec(),
        f.staged(),
        f.evaluate_requested("e", 0),
        f.decided("e", 1),
    ]
    events += [f.quantize_requested("e", 1), f.quantized("e", 1), f.evaluate_requested("e", 1)]
    events += [f.evaluated("e", 0, 0.6, 50, 500, 4000), f.evaluated("e", 1, 0.3, 60, 600, 5000)]  # 1 is dominated
    planned = plan(fold_experiment("e", events), QUANT, "grid")
    promote = [p for p in planned if p.key.endswith("promote")]
    assert [p.key for p in promote] == ["episode:0:promote"]
    request = promote[0].data
    assert isinstance(request, EvaluateRequested)
    assert request.purpose == "promotion" and request.limit == 50 and request.job_id == "e-ep0-promote"
    events.append(new_event("e", request, producer="t", key="episode:0:promote"))
    assert not [p for p in plan(fold_experiment("e", events), QUANT, "grid") if p.key.endswith("promote")]
    # the promoted result replaces the subset result on the front; the run does not end before it arrives
    state = fold_experiment("e", events)
    assert state.baseline.promotion.pending
    result = f.evaluated("e", 0, 0.55, 50, 500, 4000).data
    assert isinstance(result, EvaluateCompleted)
    events.append(
        new_event(
            "e", result.model_copy(update={"job_id": "e-ep0-promote", "purpose": "promotion", "n": 50}), producer="t"
        )
    )
    from greenai.projections.pareto import pareto_front

    base = next(c for c in pareto_front(events).candidates if c.episode == 0)
    assert base.promoted and base.n == 50 and base.accuracy == 0.55


def test_no_promotion_unless_asked_or_when_already_on_all_items() -> None:
    events = [
        f.run(episodes=1),
        f.spec(),
        f.staged(),
        f.evaluate_requested("e", 0),
        f.evaluated("e", 0, 0.6, 50, 500, 4000),
    ]
    assert not any(k.endswith("promote") for k in keys(events, QUANT))
    events[0] = f.run(episodes=1, promote_limit=3)  # the run's subset is 5 items already
    assert not any(k.endswith("promote") for k in keys(events, QUANT))
