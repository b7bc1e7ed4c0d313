"""Live capabilities: which methods the agents on the bus offer now, folded from `agent.announced`.

A pure fold: the catalogue keeps each instance's latest announcement; which of them are live is a
question asked with a time (`live(now)`), so replaying the same events always gives the same answer.
An instance is live while its next announcement is not overdue (`GRACE` intervals).

Several instances of one role (a GPU host and a CPU host both running `quantization`) each count: the
offers are the union of what every live instance can run on its own hardware, so a method is feasible
when any live instance supports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from greenai.events import Envelope
from greenai.events.capabilities import AGENTS_EXPERIMENT_PREFIX, AgentAnnounced, Hardware, MethodOffer

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
    if seen is not None and seen.announced.agent != data.agent:
        return catalogue  # another role's instance id: one role cannot shadow another's instance
    if seen is None or env.time >= seen.at:
        catalogue.instances[data.instance] = Seen(env.time, data)
    return catalogue


def fold_catalogue(events: list[Envelope]) -> Catalogue:
    catalogue = Catalogue()
    for env in events:
        apply(catalogue, env)
    return catalogue


def runs_on(offer: MethodOffer, hardware: Hardware) -> bool:
    """Whether an instance on this hardware can run the method at all (its agent refuses the job otherwise)."""
    return offer.requirements.cuda if hardware.device == "cuda" else offer.requirements.cpu


def merged(variants: list[MethodOffer]) -> MethodOffer:
    """One entry for a method several instances offer: the first in sorted instance order, with the model
    families of all of them (None, any family, if any instance runs it on any)."""
    first = variants[0]
    if len(variants) == 1 or first.families is None:
        return first
    families: set[str] = set()
    for v in variants:
        if v.families is None:
            return first.model_copy(update={"families": None})
        families.update(v.families)
    return first.model_copy(update={"families": sorted(families)})


@dataclass(frozen=True)
class Offers:
    """The methods on offer, one entry per (kind, name), in a stable order.

    Two instances of the same kind offering the same method are one offer: a method counts if any
    live instance runs it on its hardware, and supports a model family if any of them does. If their
    entries differ otherwise (a newer version of the agent), the one first in sorted instance order
    wins, deterministically.
    """

    methods: tuple[MethodOffer, ...] = ()

    @classmethod
    def of(cls, announcements: list[AgentAnnounced]) -> Offers:
        variants: dict[tuple[str, str], list[MethodOffer]] = {}
        for announced in sorted(announcements, key=lambda a: a.instance):
            for offer in announced.methods:
                if runs_on(offer, announced.hardware):
                    variants.setdefault((offer.kind, offer.name), []).append(offer)
        return cls(tuple(merged(variants[k]) for k in sorted(variants)))

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
