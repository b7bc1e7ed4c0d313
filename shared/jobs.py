"""What a job handler may raise, and running heavy work in a child process of its own.

Heavy work (loading, quantizing, evaluating a model) runs in a child so that its peak memory is
measured for that job alone, a crash cannot take the agent down, and the child dies with its agent
(PR_SET_PDEATHSIG) instead of running on as an orphan. A child still running at the job's timeout
is killed with its whole process group and the job fails for good (`JobTimeout`); so is a child
whose job was cancelled (the agent stopping), instead of blocking the event loop.

Children are forked from a warm fork server (`shared.warm_children`) that has already imported
what this process's earlier jobs imported: a fresh interpreter spends 5-15 s of CPU importing
torch, transformers and the method's libraries before any work, for every job.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from greenai.shared import warm_children
from greenai.shared.energy import EnergyReading, PowerModel, power_model, track_energy, use_power_model

T = TypeVar("T")
FailureReason = Literal["unsupported", "invalid", "error", "timeout"]

# The running job's time limit, set by the job runtime around its handler, so every
# `run_in_child` of that job gets it without the agents passing it along.
JOB_TIMEOUT_S: ContextVar[float | None] = ContextVar("JOB_TIMEOUT_S", default=None)


@contextmanager
def job_timeout(seconds: float | None) -> Iterator[None]:
    token = JOB_TIMEOUT_S.set(seconds)
    try:
        yield
    finally:
        JOB_TIMEOUT_S.reset(token)


class JobError(Exception):
    """A job that cannot succeed however often it is retried (bad settings, hardware it needs)."""

    def __init__(self, message: str, reason: FailureReason = "invalid") -> None:
        super().__init__(message, reason)
        self.message = message
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class JobTimeout(JobError):
    """The child was still running at the job's time limit and was killed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the job ran past its time limit of {seconds:g} s and was killed", "timeout")


@dataclass(frozen=True)
class Measured:
    value: Any
    wall_s: float
    peak_rss_mb: float
    energy: EnergyReading | None = None  # the child's, by shared/energy.py (None: not measured in a child)


def _die_with_parent(threads: int, parent: int, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
    """First thing in the child: die with `parent` (the agent, or the fork server that dies with it),
    own process group, and, when forked from the warm server, this job's environment and folder."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() != parent:  # the parent died before the line above: nobody would kill us
        os._exit(1)
    os.setpgrp()  # a group of its own: a timeout kills what it started too
    if env is not None:
        warm_children.adopt(env, cwd)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _measured_call(
    func: Callable[..., Any], args: tuple[Any, ...], threads: int, power: PowerModel | None = None
) -> tuple[Measured, list[str]]:
    warm_children.refuse_a_bad_fork()
    import torch

    torch.set_num_threads(threads)
    if power is not None:
        use_power_model(power)  # the agent's constants: readings in this child need no look-up
    start = time.perf_counter()
    with track_energy(power) as energy:
        value = func(*args)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    measured = Measured(value=value, wall_s=wall, peak_rss_mb=peak_kb / 1024.0, energy=energy)
    return measured, warm_children.imported_libraries()


async def run_in_child(
    func: Callable[..., Any], *args: Any, threads: int = 1, timeout_s: float | None = None, hold: bool = True
) -> Measured:
    """Run `func(*args)` in a child process; return its value, wall time, peak RSS and energy.

    `func` must be importable (module level); exceptions come back as raised in the child. The
    time limit is `timeout_s`, else the running job's (`JOB_TIMEOUT_S`); past it the child is
    killed and `JobTimeout` raised. With `hold`, the child counts as heavy work on this host: it
    waits while a latency measurement holds the host (shared.host_lease).
    """
    if hold:
        from greenai.shared.host_lease import heavy_work

        async with heavy_work():
            return await run_in_child(func, *args, threads=threads, timeout_s=timeout_s, hold=False)
    limit = timeout_s if timeout_s is not None else JOB_TIMEOUT_S.get()
    power = await asyncio.to_thread(power_model)  # once a process (seconds), then cached
    # the limit counts from here, so a (re)starting fork server's imports count in it, as a spawned child's did
    deadline = None if limit is None else asyncio.get_running_loop().time() + limit
    # starting (or restarting) the fork server imports for seconds: never on the event loop
    lease = await _finished_even_if_cancelled(asyncio.to_thread(warm_children.lease, threads), _close_lease)
    try:
        try:
            measured, imported = await _run(lease, func, args, threads, power, limit, deadline)
        except warm_children.BadFork as refused:
            warm_children.refused(str(refused))  # this job starts afresh; the server goes back to basics
            lease.close()
            lease = warm_children.Lease.spawned()
            measured, imported = await _run(lease, func, args, threads, power, limit, deadline)
    finally:
        lease.close()
    warm_children.learn(imported)
    return measured


async def _run(
    lease: warm_children.Lease,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    threads: int,
    power: PowerModel | None,
    limit: float | None,
    deadline: float | None,
) -> tuple[Measured, list[str]]:
    pool = ProcessPoolExecutor(
        max_workers=1, mp_context=lease.context, initializer=_die_with_parent, initargs=lease.initargs(threads)
    )
    done = False
    try:
        if lease.forked:  # the worker starts inside submit: a server still importing must not block the loop
            try:
                submit = asyncio.to_thread(pool.submit, _measured_call, func, args, threads, power)
                started = await _finished_even_if_cancelled(submit, None)  # then `finally` kills it
            except Exception as exc:  # the server died (a preloaded module failed): start afresh
                done = True
                raise warm_children.BadFork(f"the fork server failed: {exc!r}") from exc
        else:  # from the loop's thread: PR_SET_PDEATHSIG fires when the starting *thread* ends
            started = pool.submit(_measured_call, func, args, threads, power)
        try:
            left = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
            result: tuple[Measured, list[str]] = await asyncio.wait_for(asyncio.wrap_future(started), timeout=left)
        except TimeoutError:
            raise JobTimeout(limit or 0.0) from None
        done = True
        return result
    except warm_children.BadFork:
        done = True  # refused before any work: nothing left to kill
        raise
    finally:
        if not done:
            _kill_children(pool)
        pool.shutdown(wait=done, cancel_futures=True)


async def _finished_even_if_cancelled(work: Awaitable[T], undo: Callable[[T], None] | None) -> T:
    """Await a thread's work; if cancelled meanwhile, let it finish (a half-started child or a
    lease left open would leak), `undo` what it gave, and re-raise the cancellation."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with suppress(Exception):
            value = await task
            if undo is not None:
                undo(value)
        raise


def _close_lease(lease: warm_children.Lease) -> None:
    lease.close()


def _kill_children(pool: ProcessPoolExecutor) -> None:
    """SIGKILL the pool's worker and its process group (whatever the job started)."""
    processes = dict(getattr(pool, "_processes", None) or {})
    for pid in processes:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # its group, once its initializer ran
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for process in processes.values():
        process.join(timeout=5)
