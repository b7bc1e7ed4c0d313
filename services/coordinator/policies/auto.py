"""Maps policy names to classes."""

from __future__ import annotations

from greenai.services.coordinator.policies.bandit import BanditPolicy
from greenai.services.coordinator.policies.base import Policy
from greenai.services.coordinator.policies.grid import GridPolicy
from greenai.services.coordinator.policies.plan import PlanPolicy
from greenai.services.coordinator.policies.search import NSGA2Policy, RandomPolicy, TPEPolicy
from greenai.services.coordinator.policies.tpe_prior import TPEPriorPolicy
from greenai.shared.config import Settings

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (GridPolicy, PlanPolicy, TPEPolicy, TPEPriorPolicy, NSGA2Policy, RandomPolicy, BanditPolicy)
}


class UnknownPolicyError(LookupError):
    pass


def get_policy(name: str, settings: Settings | None = None) -> Policy:
    if name == "llm":
        from greenai.services.coordinator.policies.llm import LLMPolicy

        settings = settings or Settings()
        return LLMPolicy(settings, get_policy(settings.llm_fallback_policy))
    try:
        return POLICIES[name]()
    except KeyError:
        known = ", ".join(sorted([*POLICIES, "llm"]))
        raise UnknownPolicyError(f"unknown policy {name!r}; known: {known}") from None
