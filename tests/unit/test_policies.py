"""Search policies and stopping rules, on event histories built by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from greenai.events import new_event
from greenai.events.experiment import EpisodeDecided, RunRequested, steps_key
from greenai.projections.experiment import fold_experiment
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.objectives import PRESETS
from greenai.services.coordinator.planner import front_improvements, plan, stop_reason, wants_decision
from greenai.services.coordinator.policies.auto import POLICIES, get_policy
from greenai.services.coordinator.space import Space
from tests import factories as f

NONE = SkillMemory(skills=[])
OFFERS = f.agent_offers()


class Replay:
    """A trial that answers with a stored point, checking the choices are the recorded ones."""

    def __init__(self, point: dict[str, object], choices: dict[str, list[object]]) -> None:
        self.point, self.choices = point, choices

    def suggest_categorical(self, name: str, choices: object) -> object:
        assert list(choices) == self.choices[name]  # type: ignore[call-overload]
        return self.point[name]


def run(**kw: object) -> object:
    data = RunRequested(model="m", dataset="arc_easy", episodes=kw.pop("episodes", 10), **kw)  # type: ignore[arg-type]
    return new_event("e", data, producer="t", key="run")


def history_with(policy_name: str, results: list[tuple[float, float, float]]) -> list:
    """Let the policy decide, then give each decision a measured result, as the agents would."""
    events = [run(), f.spec(), f.evaluated("e", 0, acc=0.6, ms=50, mem=1000, size=500)]
    policy = get_policy(policy_name)
    for n, (acc, ms, size) in enumerate(results, start=1):
        d = policy.decide(fold_experiment("e", events), NONE, OFFERS)
        events.append(
            new_event(
                "e",
                EpisodeDecided(
                    episode=n,
                    action=d.action,
                    steps=list(d.steps),
                    policy=policy_name,
                    rationale=d.rationale,
                    search_point=d.search_point,
                    search_space=d.search_space,
                ),
                producer="t",
            )
        )
        events += [
            f.step_requested("e", n),
            f.step_completed("e", n),
            f.evaluated("e", n, acc=acc, ms=ms, mem=900, size=int(size)),
        ]
    return events


@pytest.mark.parametrize("name", ["tpe", "tpe-prior", "nsga2", "random"])
def test_search_policies_are_deterministic_and_record_their_point(name: str) -> None:
    events = history_with(name, [(0.5, 30, 200), (0.55, 40, 300), (0.3, 20, 100)])
    a = get_policy(name).decide(fold_experiment("e", events), NONE, OFFERS)
    b = get_policy(name).decide(fold_experiment("e", list(events)), NONE, OFFERS)
    assert a == b and a.action == "compress" and a.search_point and a.search_space
    # the stored point and choices rebuild the same decision
    assert Space(OFFERS)(Replay(a.search_point, a.search_space)) == a.steps
    tried = {steps_key(e.data.steps) for e in events if isinstance(e.data, EpisodeDecided)}
    assert steps_key(a.steps) not in tried


def test_failed_episodes_become_failed_trials_not_crashes() -> None:
    events = [run(), f.spec(), f.evaluated("e", 0, acc=0.6, ms=50, mem=1000, size=500)]
    d = get_policy("tpe").decide(fold_experiment("e", events), NONE, OFFERS)
    events.append(
        new_event(
            "e",
            EpisodeDecided(
                episode=1,
                action="compress",
                steps=list(d.steps),
                policy="tpe",
                rationale="r",
                search_point=d.search_point,
                search_space=d.search_space,
            ),
            producer="t",
        )
    )
    events += [f.step_requested("e", 1), f.failed("e", "e-ep1-s0-quantize", 1)]
    assert get_policy("tpe").decide(fold_experiment("e", events), NONE, OFFERS).action == "compress"


def test_bandit_tries_every_family_then_exploits_the_best() -> None:
    policy = get_policy("bandit")
    events = [run(), f.spec(), f.evaluated("e", 0, acc=0.6, ms=50, mem=1000, size=500)]
    families = []
    for n in range(1, 11):  # one episode per family the agents announce (10 with mixed precision)
        d = policy.decide(fold_experiment("e", events), NONE, OFFERS)
        families.append(d.rationale.split(":")[1].split("(")[0].strip())
        good = "autoround" in d.rationale
        events.append(
            new_event(
                "e",
                EpisodeDecided(
                    episode=n, action="compress", steps=list(d.steps), policy="bandit", rationale=d.rationale
                ),
                producer="t",
            )
        )
        events += [
            f.step_requested("e", n),
            f.step_completed("e", n),
            f.evaluated("e", n, acc=0.6 if good else 0.2, ms=20, mem=500, size=150),
        ]
    assert len(set(families)) == 10, f"each family once first: {families}"
    nxt = policy.decide(fold_experiment("e", events), NONE, OFFERS)
    assert "autoround" in nxt.rationale and "UCB" in nxt.rationale


def test_every_policy_is_registered() -> None:
    assert {"grid", "plan", "tpe", "tpe-prior", "nsga2", "random", "bandit"} <= set(POLICIES)


def test_tpe_prior_starts_with_the_agents_top_presets_then_searches() -> None:
    from greenai.services.coordinator.policies.tpe_prior import PRIOR_TRIALS, prior

    expected = [c.steps for c, _ in prior(Space(OFFERS), OFFERS)][:PRIOR_TRIALS]
    assert len(expected) == PRIOR_TRIALS
    events = history_with("tpe-prior", [(0.3 + 0.05 * i, 30 + i, 200 + 5 * i) for i in range(PRIOR_TRIALS)])
    decided = [e.data for e in events if isinstance(e.data, EpisodeDecided)]
    assert [tuple(d.steps) for d in decided] == expected and all("prior" in d.rationale for d in decided)
    nxt = get_policy("tpe-prior").decide(fold_experiment("e", events), NONE, OFFERS)
    assert nxt.action == "compress" and nxt.search_point and nxt.rationale.startswith("tpe-prior proposal after")


def test_objective_presets_rank_results_by_what_they_value() -> None:
    base = f.evaluated("e", 0, acc=0.6, ms=50, mem=1000, size=500).data
    fast = f.evaluated("e", 1, acc=0.5, ms=10, mem=900, size=400).data
    accurate = f.evaluated("e", 2, acc=0.6, ms=45, mem=1000, size=480).data
    assert PRESETS["latency_focused"].score(fast, base) > PRESETS["latency_focused"].score(accurate, base)
    assert PRESETS["accuracy_focused"].score(accurate, base) > PRESETS["accuracy_focused"].score(fast, base)
    small = f.evaluated("e", 3, acc=0.55, ms=50, mem=1000, size=150).data
    assert PRESETS["memory_constrained"].score(small, base) > PRESETS["memory_constrained"].score(accurate, base)


def test_patience_stops_a_run_that_no_longer_improves_the_front() -> None:
    events = [
        run(patience=2),
        f.spec(),
        f.staged(),
        f.evaluate_requested("e", 0),
        f.evaluated("e", 0, acc=0.6, ms=50, mem=1000, size=500),
    ]
    for n, acc in ((1, 0.55), (2, 0.4), (3, 0.3)):  # 1 joins the front (faster); 2 and 3 are dominated by 1
        events += [f.decided("e", n), f.step_requested("e", n), f.step_completed("e", n), f.evaluate_requested("e", n)]
        events.append(f.evaluated("e", n, acc=acc, ms=30, mem=900, size=300))
    state = fold_experiment("e", events)
    assert front_improvements(state) == [True, False, False]
    assert stop_reason(state) == "no new Pareto-front point in the last 2 episode(s)"
    assert not wants_decision(state)
    (done,) = plan(state, None, "grid")
    assert done.key == "completed" and "Pareto" in done.data.reason  # type: ignore[attr-defined]


def test_time_budget_stops_new_decisions() -> None:
    start = run(time_budget_h=1.0)
    state = fold_experiment("e", [start, f.spec(), f.evaluated("e", 0, acc=0.6, ms=50, mem=1000, size=500)])
    assert wants_decision(state, now=start.time + timedelta(minutes=30))
    assert not wants_decision(state, now=start.time + timedelta(hours=2))
    assert "time budget" in (stop_reason(state, now=start.time + timedelta(hours=2)) or "")


def test_policies_do_not_propose_what_the_model_shapes_rule_out() -> None:
    from greenai.events.experiment import Step
    from greenai.services.coordinator.feasibility import infeasible
    from tests.factories import SPEC  # hidden 64, intermediate 128, 2 layers

    q = Step(kind="quantize", method="autoround", params={"bits": 4, "group_size": 48})
    assert infeasible((q,), SPEC, OFFERS) == "autoround: group_size 48 does not divide the layer width(s) [64, 128]"
    assert infeasible((Step(kind="prune", method="layer_drop", params={"layers": 2}),), SPEC, OFFERS) is not None
    assert infeasible((q.model_copy(update={"params": {"group_size": 32}}),), SPEC, OFFERS) is None
    # no group size given: the method's own announced default (64) is checked, not a guess
    assert infeasible((q.model_copy(update={"params": {"bits": 4}}),), SPEC, OFFERS) is None
    assert infeasible((q,), None, OFFERS) is None  # no spec yet: nothing ruled out


def test_a_method_no_live_agent_offers_is_never_proposed() -> None:
    from greenai.events.experiment import Step
    from greenai.projections.capabilities import Offers
    from greenai.services.coordinator.feasibility import infeasible
    from tests.factories import SPEC

    only_prune = Offers(tuple(m for m in OFFERS.methods if m.kind == "prune"))
    gptq = (Step(kind="quantize", method="gptq"),)
    assert "no live agent offers quantize" in (infeasible(gptq, SPEC, only_prune) or "")
    gpt2 = SPEC.model_copy(update={"family": "bloom"})
    assert "does not support model family 'bloom'" in (
        infeasible((Step(kind="prune", method="wanda"),), gpt2, only_prune) or ""
    )
    events = [run(), f.spec(), f.evaluated("e", 0, acc=0.6, ms=50, mem=1000, size=500)]
    for name in ["grid", "bandit", "tpe", "random"]:
        d = get_policy(name).decide(fold_experiment("e", events), NONE, only_prune)
        assert d.action == "compress" and {s.kind for s in d.steps} == {"prune"}, (name, d)
        assert get_policy(name).decide(fold_experiment("e", events), NONE, Offers()).action == "end"


def test_a_plan_waits_for_its_methods_and_says_when_nobody_offers_them_yet() -> None:
    from greenai.events.experiment import Step
    from greenai.projections.capabilities import Offers

    steps = [Step(kind="explode", method="x")]
    events = [run(policy="plan", plan=[steps]), f.spec(), f.evaluated("e", 0, acc=0.6, ms=50, mem=1000, size=500)]
    state = fold_experiment("e", events)
    plan = get_policy("plan")
    assert plan.ready(state, Offers())  # no catalogue needed: the request waits for its agent
    d = plan.decide(state, NONE, OFFERS)  # the user asked for it: the job waits for an agent of that kind
    assert d.action == "compress" and "no live agent offers explode method 'x' yet" in d.rationale
    quant = fold_experiment("e", [run(policy="plan", plan=[[Step(kind="quantize", method="gptq")]]), f.spec()])
    assert plan.decide(quant, NONE, OFFERS).rationale == "planned episode 1 of 1"
