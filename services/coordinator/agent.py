"""The coordinator: reacts to events by folding the experiment's log and appending what is missing.

It holds no state of its own between messages: every reaction starts from a replay of the
experiment, so a coordinator killed at any point and restarted (or a second instance) carries on
where the log says, and an append raced by another instance is retried from a fresh read.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

from nats.aio.msg import Msg
from nats.js import api

from greenai.events import Envelope, EventData, MalformedEvent, new_event
from greenai.events.experiment import ExperimentFailed, SpecInferred
from greenai.events.subjects import experiment_of_subject, type_filter
from greenai.projections.experiment import ExperimentState, apply, fold_experiment
from greenai.projections.skills import SkillMemory
from greenai.services.coordinator.admission import Refused, admit
from greenai.services.coordinator.cancellation import after_cancel
from greenai.services.coordinator.catalogue import live_offers
from greenai.services.coordinator.planner import needs_policy, plan
from greenai.services.coordinator.policies.auto import UnknownPolicyError, get_policy
from greenai.services.coordinator.skills_cache import SkillsCache
from greenai.services.coordinator.spec import infer_spec
from greenai.services.coordinator.staging import stage_base_model
from greenai.shared.artifact_store import ArtifactStore
from greenai.shared.config import Settings
from greenai.shared.eventstore import ConcurrencyError, EventStore, NatsUnavailable
from greenai.shared.logging import get_logger
from greenai.shared.model_io import ModelNotFoundError
from greenai.shared.runtime import bind_consumer, decode_message, instance_id, reject, settle
from greenai.shared.scrub import scrub_text

AGENT = "coordinator"
# `*.completed`: every step kind's result, whichever agent announced the kind (and evaluations)
TRIGGERS = ("run.requested", "decision.reviewed", "experiment.cancelled", "*.completed", "job.failed")
DURABLE = "coordinator"
MAX_DELIVER = 5  # a trigger that fails this often is rejected (event.rejected), never crash-looped


class Coordinator:
    def __init__(self, store: EventStore, settings: Settings) -> None:
        self.store = store
        self.skills = SkillsCache(store)  # kept across decisions, caught up from its last sequence
        self.settings = settings
        self.artifacts = ArtifactStore(
            store.js, settings.artifact_bucket, settings.artifact_cache_dir, replicas=settings.replicas,
            chunk_bytes=settings.artifact_chunk_bytes,
        )  # fmt: skip
        self.instance = instance_id(AGENT)
        self.retry_delay_s = 1.0  # before a failed trigger's next delivery, times the deliveries so far
        self.log = get_logger(AGENT).bind(instance=self.instance)

    async def serve(self, stop: asyncio.Event) -> None:
        config = api.ConsumerConfig(
            durable_name=DURABLE,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait_s,
            filter_subjects=[type_filter(t) for t in TRIGGERS],
            deliver_policy=api.DeliverPolicy.ALL,
            max_deliver=MAX_DELIVER,
            num_replicas=self.store.replicas,
        )
        # create, or update a consumer an older version created with other triggers
        await bind_consumer(self.store, config, self.log)
        sub = await self.store.watch.retrying(
            "bind the coordinator's consumer",
            lambda: self.store.js.pull_subscribe_bind(durable=DURABLE, stream=self.store.stream),
        )
        self.log.info("serving", triggers=list(TRIGGERS))
        try:
            while not stop.is_set():
                try:
                    msgs = await self.store.fetch(sub, 1, timeout=1.0)
                except NatsUnavailable:
                    raise
                except Exception as exc:
                    self.log.warning("fetch failed", error=str(exc))
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    await self.on_message(msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            await self.skills.close()  # the skill memory's last snapshot: the next start folds only the tail

    async def on_message(self, msg: Msg) -> None:
        try:
            trigger = decode_message(msg)
        except MalformedEvent as exc:
            self.log.warning("rejected malformed message", subject=msg.subject, reason=str(exc))
            await reject(self.store, AGENT, msg, str(exc))
            await self._fail_unreadable_run(msg, str(exc))
            await msg.ack()
            return
        beat = asyncio.create_task(self._heartbeat(msg))
        try:
            if not await self.react(trigger.experiment_id, trigger):
                # a result or review for an experiment nobody requested: answered, never acted on
                await reject(self.store, AGENT, msg, f"no run.requested for experiment {trigger.experiment_id}")
        except NatsUnavailable:
            raise
        except Exception as exc:  # a poison trigger: retried a few times, then rejected, never a crash loop
            delivered = msg.metadata.num_delivered or 1
            error = scrub_text(f"{type(exc).__name__}: {exc}", 2000)
            if delivered < MAX_DELIVER:
                self.log.warning(
                    "trigger failed; it will come again", subject=msg.subject, delivery=delivered, error=error
                )
                await settle(msg, "nak", delay=self.retry_delay_s * delivered)
                return
            self.log.error("trigger failed at every delivery; rejecting it", subject=msg.subject, error=error)
            await reject(self.store, AGENT, msg, f"the coordinator failed on this trigger {delivered} times: {error}")
        finally:
            beat.cancel()
        await settle(msg)

    async def _fail_unreadable_run(self, msg: Msg, reason: str) -> None:
        """A run request that is not a valid event ends its experiment, so nobody waits on it forever."""
        experiment = experiment_of_subject(msg.subject)
        if experiment is None or not msg.subject.endswith(".run.requested"):
            return
        history = await self.store.read(experiment)
        if any(
            e.envelope.type in ("run.requested", "experiment.failed") and e.envelope.experiment_id == experiment
            for e in history.events  # a body naming another experiment, under this subject, is no request
        ):
            return
        failed = ExperimentFailed(reason=f"run request rejected: {reason[:2000]}", error_type="MalformedEvent")
        await self.store.append(new_event(experiment, failed, producer=self.instance, key="failed"))

    async def react(self, experiment_id: str, trigger: Envelope | None = None) -> bool:
        """Advance the experiment from its log; False when it has no run request to act on."""
        for _ in range(20):
            history = await self.store.read(experiment_id)
            state = fold_experiment(experiment_id, history.envelopes)
            if state.run is None:
                return False
            try:
                await self._advance(state, history.last_seq)
                return True
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
            if state.cancelled is not None:  # nothing new; the completion once what runs has finished
                pending = after_cancel(state)
            elif state.spec is None:
                pending = [self._spec_or_failure(state)]
            elif state.staged is None:
                pending = [await stage_base_model(state.run.model, self.settings, self.artifacts)]
            else:
                decision, policy_name = None, state.run.policy
                if needs_policy(state):
                    try:
                        policy = get_policy(state.run.policy, self.settings)
                    except UnknownPolicyError as exc:
                        pending = [("failed", ExperimentFailed(reason=str(exc), error_type="UnknownPolicyError"))]
                    else:
                        if skills is None:
                            skills = await self.skills.memory()
                        offers = await live_offers(
                            self.store, self.settings.capability_wait_s, functools.partial(policy.ready, state)
                        )
                        if not offers:
                            self.log.warning("no live agent announces any method", experiment=state.experiment_id)
                        # off the event loop: an LLM call may take minutes, heartbeats must go on
                        decision = await asyncio.to_thread(policy.decide, state, skills, offers)
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
        roots = self.settings.allowed_model_roots
        try:
            benchmark_roots = [p for p in (self.settings.data_dir, self.settings.work_dir) if p is not None]
            admit(state.run, roots, benchmark_roots, data_dir=self.settings.data_dir)
        except Refused as exc:
            reason = scrub_text(f"run request refused: {exc}", 4000)
            return "failed", ExperimentFailed(reason=reason, error_type="Refused")
        try:
            return "spec", SpecInferred(spec=infer_spec(state.run.model, roots))
        except ModelNotFoundError as exc:
            return "failed", ExperimentFailed(reason=scrub_text(str(exc), 4000), error_type="ModelNotFoundError")
        except Exception as exc:  # a config transformers cannot read is as final as a missing model
            return "failed", ExperimentFailed(
                reason=scrub_text(f"could not read the model's config: {exc}", 4000), error_type=type(exc).__name__
            )

    async def _heartbeat(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(max(self.settings.ack_wait_s / 3.0, 0.2))
            with contextlib.suppress(Exception):
                await msg.in_progress()
