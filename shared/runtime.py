"""The agent runtime: connect to NATS, take jobs from a durable consumer, turn outcomes into events.

Every instance of an agent binds to the same durable pull consumer, so JetStream hands each job
to exactly one of them (queue semantics, across processes and machines). A job is acked only
after its outcome is in the log; a job whose agent dies is redelivered after `ack_wait`; the
delivery past `max_attempts` becomes a final `job.failed` instead of another try.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api

from greenai.events import Envelope, EventData, MalformedEvent, decode, new_event
from greenai.events.jobs import EventRejected, JobFailed, JobStarted
from greenai.events.subjects import SYSTEM_EXPERIMENT, experiment_of_subject, type_filter
from greenai.shared.eventstore import EventStore
from greenai.shared.jobs import JobError
from greenai.shared.logging import get_logger
from greenai.shared.scrub import scrub_text

FailureReasonOrGaveUp = Literal["unsupported", "invalid", "error", "gave_up"]
Handler = Callable[[Envelope], Awaitable[Sequence[EventData]]]


def instance_id(agent: str) -> str:
    return f"{agent}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def reject(store: EventStore, agent: str, msg: Msg, reason: str) -> None:
    """Record a message that is not a valid event, under its experiment if the subject names one."""
    experiment = experiment_of_subject(msg.subject) or SYSTEM_EXPERIMENT
    raw = msg.data.decode("utf-8", errors="replace")[:2000]
    seq = msg.metadata.sequence.stream if msg.reply else 0
    event = new_event(
        experiment,
        EventRejected(subject=msg.subject, agent=agent, reason=reason, raw=raw),
        producer=agent,
        key=f"rejected:{agent}:{msg.subject}:{seq}" if seq else None,
    )
    await store.append(event)


def decode_message(msg: Msg) -> Envelope:
    """Decode a message and check it was published on its own subject: a body that names another
    experiment or type than its subject is refused (subject permissions are checked on the subject)."""
    envelope = decode(msg.data)
    if msg.subject != envelope.subject:
        raise MalformedEvent(f"published on {msg.subject[:200]} but the event is {envelope.subject[:200]}")
    return envelope


@dataclass
class JobSpec:
    """One kind of job an agent serves."""

    agent: str
    request_type: str  # e.g. "quantize.requested"
    job_kind: str  # e.g. "quantize"
    handler: Handler
    result_types: tuple[str, ...]  # event types that mean "this job is done"

    @property
    def durable(self) -> str:
        return f"{self.agent}-{self.request_type.replace('.', '-')}"


class JobWorker:
    def __init__(
        self,
        store: EventStore,
        spec: JobSpec,
        *,
        ack_wait_s: float,
        max_attempts: int,
        instance: str | None = None,
        retry_delay_s: float = 2.0,
    ) -> None:
        self.store = store
        self.spec = spec
        self.ack_wait_s = ack_wait_s
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self.instance = instance or instance_id(spec.agent)
        self.log = get_logger(spec.agent).bind(instance=self.instance, consumer=spec.durable)

    async def subscribe(self) -> object:
        config = api.ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            # one delivery beyond the attempts, so the agent can record that it gave up
            max_deliver=self.max_attempts + 1,
            filter_subject=type_filter(self.spec.request_type),
            deliver_policy=api.DeliverPolicy.ALL,
        )
        try:  # create, or update the settings (ack wait, attempts) of an existing one
            await self.store.js.add_consumer(self.store.stream, config)
        except Exception as exc:
            self.log.warning("could not create or update the consumer; binding to it as it is", error=str(exc))
        return await self.store.js.pull_subscribe_bind(durable=self.spec.durable, stream=self.store.stream)

    async def serve(self, stop: asyncio.Event) -> None:
        sub = await self.subscribe()
        self.log.info("serving", subject=type_filter(self.spec.request_type))
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(1, timeout=1.0)  # type: ignore[attr-defined]
                except NatsTimeoutError:
                    continue
                except Exception as exc:  # connection trouble: keep trying, the client reconnects
                    self.log.warning("fetch failed", error=str(exc))
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    await self.process(msg)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()  # type: ignore[attr-defined]

    async def process(self, msg: Msg) -> None:
        try:
            request = decode_message(msg)
            if request.type != self.spec.request_type:
                raise MalformedEvent(f"expected {self.spec.request_type}, got {request.type}")
        except MalformedEvent as exc:
            self.log.warning("rejected malformed message", subject=msg.subject, reason=str(exc))
            await reject(self.store, self.spec.agent, msg, str(exc))
            await msg.ack()
            return

        job_id = getattr(request.data, "job_id", str(request.event_id))
        episode = int(getattr(request.data, "episode", 0))
        attempt = msg.metadata.num_delivered or 1
        log = self.log.bind(experiment=request.experiment_id, job=job_id, attempt=attempt)

        history = await self.store.read(request.experiment_id)
        if any(
            e.envelope.causation_id == request.event_id
            and (
                e.envelope.type in self.spec.result_types
                or (isinstance(e.envelope.data, JobFailed) and e.envelope.data.final)
            )
            for e in history.events
        ):
            log.info("job already finished in the log; acking the redelivery")
            await msg.ack()
            return

        def failed(reason: FailureReasonOrGaveUp, exc_type: str, message: str, final: bool) -> Envelope:
            return new_event(
                request.experiment_id,
                JobFailed(
                    job_id=job_id,
                    kind=self.spec.job_kind,
                    episode=episode,
                    agent=self.spec.agent,
                    attempt=attempt,
                    final=final,
                    reason=reason,
                    error_type=exc_type,
                    message=scrub_text(message, 4000),  # provider errors may echo keys
                ),
                producer=self.instance,
                cause=request,
                key=f"{job_id}:failed:{attempt}",
            )

        if attempt > self.max_attempts:
            log.error("giving up")
            await self.store.append(
                failed("gave_up", "MaxAttempts", f"no attempt completed in {self.max_attempts} deliveries", True)
            )
            await msg.ack()
            return

        await self.store.append(
            new_event(
                request.experiment_id,
                JobStarted(
                    job_id=job_id,
                    kind=self.spec.job_kind,
                    agent=self.spec.agent,
                    instance=self.instance,
                    attempt=attempt,
                ),
                producer=self.instance,
                cause=request,
                key=f"{job_id}:started:{attempt}",
            )
        )
        log.info("job started")
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            results = await self.spec.handler(request)
        except JobError as exc:
            log.warning("job failed for good", reason=exc.reason, error=exc.message)
            await self.store.append(failed(exc.reason, type(exc).__name__, exc.message, True))
            await msg.ack()
            return
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await msg.nak()
            raise
        except Exception as exc:
            final = attempt >= self.max_attempts
            log.exception("job raised", final=final)
            await self.store.append(failed("error", type(exc).__name__, str(exc) or repr(exc), final))
            if final:
                await msg.ack()
            else:
                await msg.nak(delay=min(self.retry_delay_s * 2 ** (attempt - 1), 60.0))
            return
        finally:
            heartbeat.cancel()
        for i, data in enumerate(results):
            await self.store.append(
                new_event(
                    request.experiment_id, data, producer=self.instance, cause=request, key=f"{job_id}:result:{i}"
                )
            )
        await msg.ack()
        log.info("job completed", results=[d.TYPE for d in results])

    async def _heartbeat(self, msg: Msg) -> None:
        """Tell JetStream the job is alive, so only a dead agent's job is redelivered."""
        while True:
            await asyncio.sleep(max(self.ack_wait_s / 3.0, 0.2))
            with contextlib.suppress(Exception):
                await msg.in_progress()


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
