"""The dashboard's read model as a snapshot: what a restarted dashboard resumes from instead of
replaying the whole log.

What is kept is what the pages need before anyone opens an experiment: each experiment's row of the
experiments page (the same `views.summary` a full fold gives) and the sequence that last changed it,
the agents' catalogue (each instance's latest announcement), what each instance is doing, and the
read position. An experiment comes back *dormant*: its row is served as stored, and its whole state
is folded from its own events (`EventStore.read`, one subject filter) the first time a page opens it
or a new event of it arrives (`ReadModel.wake`). So a restart costs the snapshot and the tail, not the
log, and the result is the full fold's.

The state is read back as untrusted input: validated by strict pydantic models (`extra="forbid"`),
never unpickled; `shared.projection_snapshot` bounds its size and checks its header first.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from greenai.events.capabilities import AgentAnnounced
from greenai.events.jobs import JobStarted
from greenai.events.subjects import EXPERIMENT_ID_PATTERN
from greenai.projections import capabilities, experiment, pareto
from greenai.services.dashboard import hypervolume, readmodel, views
from greenai.services.dashboard.readmodel import ReadModel
from greenai.shared.kept_projection import fold_version

NAME = "dashboard"
STATE_VERSION = 1
# A change to any fold or view a stored row came from refuses the old snapshots (one full replay).
VERSION = fold_version(STATE_VERSION, sys.modules[__name__], readmodel, views, experiment, pareto, capabilities,
                       hypervolume)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Row(_Strict):
    """One experiment's row, as `views.summary` gives it."""

    id: str = Field(pattern=EXPERIMENT_ID_PATTERN)  # a forged row cannot name what no subject could carry
    status: str
    reason: str
    model: str
    dataset: str
    policy: str
    objective: str
    interactive: bool
    episodes_done: int
    episodes_planned: int
    best_accuracy: float | None
    baseline_accuracy: float | None
    started: str | None
    events: int
    last_seq: int = Field(ge=0)
    proposal: dict[str, Any] | None
    cancellable: bool


class AgentState(_Strict):
    instance: str
    at: datetime
    first_seen: datetime
    announced: AgentAnnounced


class Doing(_Strict):
    instance: str
    experiment: str
    job: JobStarted


class ReadModelState(_Strict):
    last_seq: int = Field(ge=1)
    agents_seq: int = Field(ge=0)
    unreadable: int = Field(ge=0)
    rows: list[Row]
    agents: list[AgentState]
    doing: list[Doing]


def dump_state(read: ReadModel) -> bytes:
    """The read model as it is now (call it without awaiting in between: the feed must not move)."""
    rows = [Row.model_validate(r) for r in read.all_rows()]
    agents = [
        AgentState(instance=i, at=s.at, first_seen=read.agent_seen.get(i, s.at), announced=s.announced)
        for i, s in read.catalogue.instances.items()
    ]
    doing = [Doing(instance=i, experiment=e, job=j) for i, (e, j) in read.doing.items()]
    state = ReadModelState(last_seq=read.last_seq, agents_seq=read.agents_seq, unreadable=read.unreadable,
                           rows=rows, agents=agents, doing=doing)  # fmt: skip
    return to_json(state, inf_nan_mode="constants")


def load_state(raw: bytes) -> ReadModel:
    """A read model whose experiments are all dormant; raises on anything it cannot resume from."""
    state = ReadModelState.model_validate_json(raw, strict=True)
    read = ReadModel(last_seq=state.last_seq, agents_seq=state.agents_seq, unreadable=state.unreadable)
    for a in state.agents:
        read.catalogue.instances[a.instance] = capabilities.Seen(a.at, a.announced)
        read.agent_seen[a.instance] = a.first_seen
    for d in state.doing:
        read.doing[d.instance] = (d.experiment, d.job)
    for row in state.rows:
        if row.last_seq > state.last_seq:
            raise ValueError(f"experiment {row.id} at sequence {row.last_seq}, past the snapshot's {state.last_seq}")
        read.dormant[row.id] = row.model_dump()
    return read
