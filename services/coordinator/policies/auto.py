"""Maps policy names to classes."""

from __future__ import annotations

from greenai.services.coordinator.policies.bandit import BanditPolicy
from greenai.services.coordinator.policies.base import Policy
from greenai.services.coordinator.policies.grid import GridPolicy
from greenai.services.coordinator.policies.plan import PlanPolicy
from greenai.services.coordinator.policies.search import NSGA2Policy, RandomPolicy, TPEPolicy

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (GridPolicy, PlanPolicy, TPEPolicy, NSGA2Policy, RandomPolicy, BanditPolicy)
}


class UnknownPolicyError(LookupError):
    pass


def get_policy(name: str) -> Policy:
    try:
        return POLICIES[name]()
    except KeyError:
        raise UnknownPolicyError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}") from None
