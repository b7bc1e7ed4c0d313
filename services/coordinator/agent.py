"""The coordinator: reacts to events by folding the experiment's log and appending what is missing.

It holds no state of its own between messages: every reaction starts from a replay of the
experiment, so a coordinator killed at any point and restarted (or a second instance) carries on
where the log says, and an append raced by another instance is retried from a fresh read.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api

from greenai.events import Envelope, EventData, MalformedEvent, decode, new_event
from greenai.events.experiment import ExperimentFailed, SpecInferred
from greenai.events.subjects import type_filter
from greenai.projections.experiment import ExperimentState, apply, fold_experiment
from greenai.projections.skills import SkillMemory, skill_memory
from greenai.services.coordinator.planner import needs_policy, plan
from greenai.services.coordinator.policies.auto import UnknownPolicyError, get_policy
from greenai.services.coordinator.spec import infer_spec
from greenai.shared.config import Settings
from greenai.shared.eventstore import ConcurrencyError, EventStore
from greenai.shared.logging import get_logger
from greenai.shared.model_io import ModelNotFoundError
from greenai.shared.runtime import instance_id, reject

AGENT = "coordinator"
TRIGGERS = (
    "run.requested",
    "decision.reviewed",
    "quantize.completed",
    "prune.completed",
    "lora.completed",
    "evaluate.completed",
    "job.failed",
)
DURABLE = "coordinator"


class Coordinator:
    def __init__(self, store: EventStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.instance = instance_id(AGENT)
        self.log = get_logger(AGENT).bind(instance=self.instance)

    async def serve(self, stop: asyncio.Event) -> None:
        config = api.ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait_s,
            filter_subjects=[type_filter(t) for t in TRIGGERS],
            deliver_policy=api.DeliverPolicy.ALL,
        )
        try:  # create, or update a consumer an older version created with other triggers
            await self.store.js.add_consumer(self.store.stream, config)
        except Exception as exc:
            self.log.warning("could not create or update the consumer; binding to it as it is", error=str(exc))
        sub = await self.store.js.pull_subscribe_bind(durable=DURABLE, stream=self.store.stream)
        self.log.info("serving", triggers=list(TRIGGERS))
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(1, timeout=1.0)
                except NatsTimeoutError:
                    continue
                except Exception as exc:
                    self.log.warning("fetch failed", error=str(exc))
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    await self.on_message(msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def on_message(self, msg: Msg) -> None:
        try:
            trigger = decode(msg.data)
        except MalformedEvent as exc:
            self.log.warning("rejected malformed message", subject=msg.subject, reason=str(exc))
            await reject(self.store, AGENT, msg, str(exc))
            await msg.ack()
            return
        beat = asyncio.create_task(self._heartbeat(msg))
        try:
            await self.react(trigger.experiment_id, trigger)
        finally:
            beat.cancel()
        await msg.ack()

    async def react(self, experiment_id: str, trigger: Envelope | None = None) -> None:
        for _ in range(20):
            history = await self.store.read(experiment_id)
            state = fold_experiment(experiment_id, history.envelopes)
            try:
                await self._advance(state, history.last_seq)
                return
            except ConcurrencyError:
                self.log.info("log moved under us; re-reading", experiment=experiment_id)
        raise RuntimeError(f"could not settle experiment {experiment_id} after 20 concurrent updates")

    async def _advance(self, state: ExperimentState, last_seq: int) -> None:
        seq = last_seq
        skills: SkillMemory | None = None
        while True:
            if state.run is None or state.closed:
                return
            pending: list[tuple[str, EventData]] = []
            if state.spec is None:
                pending = [self._spec_or_failure(state)]
            else:
                decision, policy_name = None, state.run.policy
                if needs_policy(state):
                    try:
                        policy = get_policy(state.run.policy, self.settings)
                    except UnknownPolicyError as exc:
                        pending = [("failed", ExperimentFailed(reason=str(exc), error_type="UnknownPolicyError"))]
                    else:
                        if skills is None:
                            skills = skill_memory([e.envelope async for e in self.store.read_everything()])
                        decision = policy.decide(state, skills)
                if not pending:
                    if decision is not None:
                        prefix = f"episode:{state.decided + 1}"
                        if state.run.interactive:
                            prefix += f":proposal:{len(state.proposals.get(state.decided + 1, [])) + 1}"
                        pending = [(f"{prefix}:note:{i}", note) for i, note in enumerate(decision.notes)]
                    pending += [(p.key, p.data) for p in plan(state, decision, policy_name)]
            if not pending:
                return
            assert state.run_event is not None
            for key, data in pending:
                env = new_event(state.experiment_id, data, producer=self.instance, cause=state.run_event, key=key)
                result = await self.store.append(env, expected_last_seq=seq)
                seq = result.seq
                apply(state, env)
                self.log.info("appended", experiment=state.experiment_id, type=data.TYPE, key=key)

    def _spec_or_failure(self, state: ExperimentState) -> tuple[str, EventData]:
        assert state.run is not None
        try:
            return "spec", SpecInferred(spec=infer_spec(state.run.model))
        except ModelNotFoundError as exc:
            return "failed", ExperimentFailed(reason=str(exc), error_type="ModelNotFoundError")
        except Exception as exc:  # a config transformers cannot read is as final as a missing model
            return "failed", ExperimentFailed(
                reason=f"could not read the model's config: {exc}", error_type=type(exc).__name__
            )

    async def _heartbeat(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(max(self.settings.ack_wait_s / 3.0, 0.2))
            with contextlib.suppress(Exception):
                await msg.in_progress()
