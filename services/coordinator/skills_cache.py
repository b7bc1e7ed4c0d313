"""The skill memory kept up to date in the coordinator process instead of refolded at every decision.

The fold (`projections.skills.SkillFold`) stays pure; `shared.kept_projection` keeps one alive with the
last stream sequence it applied and, when asked, applies only what was appended since. A decision then
costs the events since the previous one, not the whole log. A new coordinator process resumes from the
snapshot in the `greenai-projections` bucket (its state, its sequence, the fold's version) and folds
only the tail; without one, or with one it refuses, it folds the log from the start.
"""

from __future__ import annotations

from greenai.projections import skills, skills_state
from greenai.projections.skills import SkillFold, SkillMemory
from greenai.shared.eventstore import EventStore
from greenai.shared.kept_projection import SAVE_EVERY, FoldKind, KeptProjection, fold_version
from greenai.shared.projection_snapshot import ProjectionSnapshots

SKILLS = FoldKind[SkillFold](
    name="skills",
    version=fold_version(skills_state.STATE_VERSION, skills, skills_state),
    make=SkillFold,
    apply=SkillFold.apply,
    dump=skills_state.dump_state,
    load=skills_state.load_state,
)


class SkillsCache(KeptProjection[SkillFold]):
    """One coordinator's skill memory; `memory()` catches up from `last_seq` and returns it.
    Snapshots go to the store's server unless `snapshots=False`."""

    def __init__(self, store: EventStore, snapshots: bool = True, save_every: int = SAVE_EVERY) -> None:
        super().__init__(store, SKILLS, ProjectionSnapshots(store.js) if snapshots else None, save_every)

    async def memory(self) -> SkillMemory:
        return (await self.current()).memory()
