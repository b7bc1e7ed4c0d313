"""How a method describes itself for its agent's announcement (`agent.announced`).

A method class mixes in `Offered` and sets the class attributes below next to its code; the agent
turns its registry into `MethodOffer`s. The parameter schema comes from the method's own pydantic
config, so the catalogue cannot drift from what the method accepts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from greenai.events.capabilities import AgentAnnounced, Grid, Hardware, MethodOffer, Preset, Requirements

ANNOUNCE_INTERVAL_S = 60.0


class Offered:
    """Catalogue attributes of a method; the agent that runs it announces them."""

    name: ClassVar[str]
    config_class: ClassVar[type[BaseModel]]
    group: ClassVar[str] = ""  # the bandit's arm; defaults to the method's name
    summary: ClassVar[str] = ""
    stage: ClassVar[Literal["compress", "recover"]] = "compress"
    order: ClassVar[int] = 50
    search: ClassVar[tuple[Grid, ...]] = ()
    fast_search: ClassVar[tuple[Grid, ...] | None] = None
    presets: ClassVar[tuple[Preset, ...]] = ()
    families: ClassVar[frozenset[str] | None] = None  # model types (config.model_type) it runs on; None: any
    divides_widths: ClassVar[tuple[str, ...]] = ()
    removes_layers: ClassVar[str | None] = None

    @classmethod
    def offer(cls, kind: str, requirements: Requirements | None = None) -> MethodOffer:
        return MethodOffer(
            kind=kind,
            name=cls.name,
            stage=cls.stage,
            order=cls.order,
            group=cls.group or cls.name,
            summary=cls.summary,
            params_schema=cls.config_class.model_json_schema(),
            search=list(cls.search),
            fast_search=None if cls.fast_search is None else list(cls.fast_search),
            presets=list(cls.presets),
            families=None if cls.families is None else sorted(cls.families),
            requirements=requirements or Requirements(),
            divides_widths=list(cls.divides_widths),
            removes_layers=cls.removes_layers,
        )


def preset(rank: int, rationale: str, /, after: str | None = None, **params: Any) -> Preset:
    return Preset(params=params, rationale=rationale, rank=rank, after=after)


def hardware(device: str, available_memory_bytes: int) -> Hardware:
    gpu = None
    if device == "cuda":
        import torch

        gpu = torch.cuda.get_device_name(0)
    return Hardware(
        host=socket.gethostname(), device="cuda" if device == "cuda" else "cpu", cpus=os.cpu_count() or 1,
        memory_bytes=available_memory_bytes, gpu=gpu,
    )  # fmt: skip


def announcement(
    agent: str, instance: str, kind: str, methods: Iterable[MethodOffer], hw: Hardware, interval_s: float
) -> AgentAnnounced:
    return AgentAnnounced(
        agent=agent, instance=instance, kind=kind, methods=list(methods), hardware=hw, interval_s=interval_s
    )


def announcer(
    agent: str, kind: str, methods: Callable[[], Iterable[MethodOffer]], device: str, settings: Any
) -> Callable[[str], AgentAnnounced]:
    """The `JobSpec.announce` of a step agent: its offers, its hardware now, its heartbeat interval."""

    def build(instance: str) -> AgentAnnounced:
        hw = hardware(device, settings.available_memory_bytes())
        return announcement(agent, instance, kind, methods(), hw, settings.announce_interval_s)

    return build
