"""The agent runtime: connect to NATS, take jobs from a durable consumer, turn outcomes into events.

Every instance of an agent binds to the same durable pull consumer, so JetStream hands each job
to exactly one of them (queue semantics, across processes and machines). A job is acked only
after its outcome is in the log; a job whose agent dies is redelivered after `ack_wait`; the
delivery past `max_attempts` becomes a final `job.failed` instead of another try.

Retry rule: a job is tried again only when another try might succeed: NATS/OS-level trouble
(`OSError` but `PermissionError`, NATS timeouts), memory (`MemoryError`, an 'out of memory' error)
and a child process that died (`BrokenProcessPool`: killed by a signal or the OOM killer).
Everything else a job raises (`JobError`, a timeout, `ValueError`, `TypeError`, `KeyError`,
`AttributeError`, other `RuntimeError`s...) is deterministic: the job fails for good at once.

Handlers must not block the event loop: heartbeats (and the connection's pings) run on it. Slow
work goes to `run_in_child` (heavy jobs, with the job's time limit) or `asyncio.to_thread`; a
blocked loop is detected by the heartbeat and logged, since then `ack_wait` may expire and
another instance run the same job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal

from nats.aio.msg import Msg
from nats.js import api

from greenai.events import Envelope, EventData, MalformedEvent, decode, new_event
from greenai.events.capabilities import AgentAnnounced
from greenai.events.jobs import EventRejected, JobFailed, JobStarted
from greenai.events.subjects import SYSTEM_EXPERIMENT, experiment_of_subject, type_filter
from greenai.shared.announce import announce_forever
from greenai.shared.connection import TRANSIENT, one_line
from greenai.shared.eventstore import EventStore, EventTooLarge, NatsUnavailable
from greenai.shared.host_lease import HOST_GATE, HostGate
from greenai.shared.jobs import JobError, job_timeout
from greenai.shared.logging import get_logger
from greenai.shared.scrub import scrub_text

FailureReasonOrGaveUp = Literal["unsupported", "invalid", "error", "gave_up", "timeout"]


def is_transient(exc: BaseException) -> bool:
    """Whether another delivery of the job might succeed (the retry rule above)."""
    if isinstance(exc, JobError | PermissionError | NatsUnavailable):
        return False
    if isinstance(exc, (BrokenProcessPool, MemoryError, *TRANSIENT)):
        return True
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


async def settle(msg: Msg, how: str = "ack", **kwargs: Any) -> None:
    """Ack or nak; a lost ack only means a redelivery, which finds the outcome in the log."""
    try:
        await getattr(msg, how)(**kwargs)
    except Exception as exc:
        get_logger("runtime").warning(f"could not {how} a message; it may be delivered again", error=one_line(exc))


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
    attach: Callable[[Any], None] | None = None  # given the bus's JetStream context (e.g. its object store)
    announce: Callable[[str], AgentAnnounced] | None = None  # given the instance id: what this agent offers

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
        job_timeout_s: float | None = None,
    ) -> None:
        self.store = store
        self.spec = spec
        if spec.attach is not None:
            spec.attach(store.js)
        self.ack_wait_s = ack_wait_s
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        if job_timeout_s is None:  # the agents do not pass it: take the kind's limit from the settings
            from greenai.shared.config import Settings

            job_timeout_s = Settings().job_timeout(spec.job_kind)
        self.job_timeout_s = job_timeout_s
        self.instance = instance or instance_id(spec.agent)
        self.log = get_logger(spec.agent).bind(instance=self.instance, consumer=spec.durable)
        self.gate = HostGate(store.js)

    async def subscribe(self) -> Any:
        config = api.ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            # one delivery beyond the attempts, so the agent can record that it gave up
            max_deliver=self.max_attempts + 1,
            filter_subject=type_filter(self.spec.request_type),
            deliver_policy=api.DeliverPolicy.ALL,
            num_replicas=self.store.replicas,
        )
        await bind_consumer(self.store, config, self.log)
        return await self.store.watch.retrying(
            "bind the job consumer",
            lambda: self.store.js.pull_subscribe_bind(durable=self.spec.durable, stream=self.store.stream),
        )

    async def serve(self, stop: asyncio.Event) -> None:
        """Take jobs until `stop`; raises `NatsUnavailable` when NATS stays away past the outage budget
        (the job in hand is not acked: JetStream gives it to another instance)."""
        sub = await self.subscribe()
        self.log.info("serving", subject=type_filter(self.spec.request_type), job_timeout_s=self.job_timeout_s)
        last_error = ""
        announcer = None
        if self.spec.announce is not None:
            build = self.spec.announce
            announcer = asyncio.create_task(announce_forever(self.store, lambda: build(self.instance), stop, self.log))
        try:
            while not stop.is_set():
                try:
                    msgs = await self.store.fetch(sub, 1, timeout=1.0)
                except NatsUnavailable:
                    raise
                except Exception as exc:  # e.g. the consumer deleted under us: say it once, keep trying
                    if one_line(exc) != last_error:
                        last_error = one_line(exc)
                        self.log.warning("fetch failed", error=last_error)
                    await asyncio.sleep(0.5)
                    continue
                last_error = ""
                for msg in msgs:
                    await self.process(msg)
        finally:
            if announcer is not None:
                announcer.cancel()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def process(self, msg: Msg) -> None:
        try:
            request = decode_message(msg)
            if request.type != self.spec.request_type:
                raise MalformedEvent(f"expected {self.spec.request_type}, got {request.type}")
        except MalformedEvent as exc:
            self.log.warning("rejected malformed message", subject=msg.subject, reason=str(exc))
            await reject(self.store, self.spec.agent, msg, str(exc))
            await settle(msg)
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
            await settle(msg)
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
            await settle(msg)
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
        heartbeat = asyncio.create_task(keep_alive(msg, self.ack_wait_s, log))
        gate = HOST_GATE.set((self.gate, f"{self.instance} {job_id}"))
        try:
            with job_timeout(self.job_timeout_s):
                results = await self.spec.handler(request)
        except JobError as exc:
            log.warning("job failed for good", reason=exc.reason, error=exc.message)
            await self.store.append(failed(exc.reason, type(exc).__name__, exc.message, True))
            await settle(msg)
            return
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await msg.nak()
            raise
        except NatsUnavailable:
            raise
        except Exception as exc:
            final = attempt >= self.max_attempts or not is_transient(exc)
            log.exception("job raised", final=final, transient=is_transient(exc))
            await self.store.append(failed("error", type(exc).__name__, str(exc) or repr(exc), final))
            if final:
                await settle(msg)
            else:
                await settle(msg, "nak", delay=min(self.retry_delay_s * 2 ** (attempt - 1), 60.0))
            return
        finally:
            heartbeat.cancel()
            HOST_GATE.reset(gate)
        outcome = [
            new_event(request.experiment_id, data, producer=self.instance, cause=request, key=f"{job_id}:result:{i}")
            for i, data in enumerate(results)
        ]
        try:  # all or nothing: a result the log would refuse fails the job before any is written
            for env in outcome:
                self.store.check_size(env)
        except EventTooLarge as exc:
            log.warning("job result too large", error=str(exc))
            await self.store.append(failed("invalid", "EventTooLarge", f"the job's result is too large: {exc}", True))
            await settle(msg)
            return
        for env in outcome:
            await self.store.append(env)
        await settle(msg)
        log.info("job completed", results=[d.TYPE for d in results])


async def bind_consumer(store: EventStore, config: api.ConsumerConfig, log: Any) -> None:
    """Create the durable consumer, or update an existing one's settings; bind to it as it is when
    this identity may not (the warning says why). Retried across an outage."""
    try:
        await store.watch.retrying("create the consumer", lambda: store.js.add_consumer(store.stream, config))
    except NatsUnavailable:
        raise
    except Exception as exc:
        log.warning("could not create or update the consumer; binding to it as it is", error=one_line(exc))


async def keep_alive(msg: Msg, ack_wait_s: float, log: Any) -> None:
    """Tell JetStream the job is alive (every ack_wait/3), so only a dead agent's job is redelivered.
    A beat that comes late means the event loop was blocked: say so, since by ack_wait another
    instance may get the same job."""
    interval = max(ack_wait_s / 3.0, 0.2)
    while True:
        before = time.monotonic()
        await asyncio.sleep(interval)
        late = time.monotonic() - before - interval
        if late > interval:
            log.warning(
                "event loop blocked; heartbeats were late (handlers must not block: use run_in_child or to_thread)",
                late_s=round(late, 1),
                ack_wait_s=ack_wait_s,
            )
        with contextlib.suppress(Exception):
            await msg.in_progress()


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
