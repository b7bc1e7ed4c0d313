"""Live capabilities: which methods the agents on the bus offer now, folded from `agent.announced`.

A pure fold: the catalogue keeps each instance's latest announcement; which of them are live is a
question asked with a time (`live(now)`), so replaying the same events always gives the same answer.
An instance is live while its next announcement is not overdue (`GRACE` intervals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from greenai.events import Envelope
from greenai.events.capabilities import AGENTS_EXPERIMENT_PREFIX, AgentAnnounced, MethodOffer

GRACE = 3.0  # missed announcements before an instance counts as gone


@dataclass
class Seen:
    at: datetime
    announced: AgentAnnounced


@dataclass
class Catalogue:
    instances: dict[str, Seen] = field(default_factory=dict)

    def live(self, now: datetime) -> Offers:
        alive = [
            s.announced
            for s in self.instances.values()
            if now - s.at <= timedelta(seconds=GRACE * s.announced.interval_s)
        ]
        return Offers.of(alive)


def apply(catalogue: Catalogue, env: Envelope) -> Catalogue:
    """Take an announcement if it comes from where its role may publish (`_agents-<role>`)."""
    data = env.data
    if not isinstance(data, AgentAnnounced):
        return catalogue
    if env.experiment_id != f"{AGENTS_EXPERIMENT_PREFIX}{data.agent}":
        return catalogue  # an announcement in someone else's name: ignored
    seen = catalogue.instances.get(data.instance)
    if seen is None or env.time >= seen.at:
        catalogue.instances[data.instance] = Seen(env.time, data)
    return catalogue


def fold_catalogue(events: list[Envelope]) -> Catalogue:
    catalogue = Catalogue()
    for env in events:
        apply(catalogue, env)
    return catalogue


@dataclass(frozen=True)
class Offers:
    """The methods on offer, one entry per (kind, name), in a stable order.

    Two instances of the same kind offering the same method are one offer; if their entries differ
    (a newer version of the agent), the one first in sorted instance order wins, deterministically.
    """

    methods: tuple[MethodOffer, ...] = ()

    @classmethod
    def of(cls, announcements: list[AgentAnnounced]) -> Offers:
        chosen: dict[tuple[str, str], MethodOffer] = {}
        for announced in sorted(announcements, key=lambda a: a.instance):
            for offer in announced.methods:
                chosen.setdefault((offer.kind, offer.name), offer)
        return cls(tuple(chosen[k] for k in sorted(chosen)))

    def __bool__(self) -> bool:
        return bool(self.methods)

    def kinds(self, stage: str | None = None) -> list[str]:
        """Kinds in pipeline order (compression by `order`, then recovery)."""
        kinds: dict[str, tuple[int, int]] = {}
        for m in self.methods:
            if stage is None or m.stage == stage:
                rank = (0 if m.stage == "compress" else 1, m.order)
                kinds[m.kind] = min(kinds.get(m.kind, rank), rank)
        return sorted(kinds, key=lambda k: (kinds[k], k))

    def of_kind(self, kind: str) -> list[MethodOffer]:
        return [m for m in self.methods if m.kind == kind]

    def get(self, kind: str, name: str) -> MethodOffer | None:
        return next((m for m in self.methods if m.kind == kind and m.name == name), None)

    def fingerprint(self) -> str:
        """Changes whenever the set of offered methods or their search grids change."""
        import hashlib

        text = "|".join(m.model_dump_json(include={"kind", "name", "search", "fast_search"}) for m in self.methods)
        return hashlib.sha256(text.encode()).hexdigest()[:8]
