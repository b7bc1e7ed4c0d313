"""What a job handler may raise, and running heavy work in a fresh child process.

Heavy work (loading, quantizing, evaluating a model) runs in a spawned child so that its peak
memory is measured for that job alone, a crash cannot take the agent down, and the child dies
with its agent (PR_SET_PDEATHSIG) instead of running on as an orphan. A child still running at the
job's timeout is killed with its whole process group and the job fails for good (`JobTimeout`);
so is a child whose job was cancelled (the agent stopping), instead of blocking the event loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from greenai.shared.energy import EnergyReading, PowerModel, power_model, track_energy, use_power_model

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


def _die_with_parent(threads: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgrp()  # a group of its own: a timeout kills what it started too
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _measured_call(
    func: Callable[..., Any], args: tuple[Any, ...], threads: int, power: PowerModel | None = None
) -> Measured:
    import torch

    torch.set_num_threads(threads)
    if power is not None:
        use_power_model(power)  # the agent's constants: readings in this child need no look-up
    start = time.perf_counter()
    with track_energy(power) as energy:
        value = func(*args)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Measured(value=value, wall_s=wall, peak_rss_mb=peak_kb / 1024.0, energy=energy)


async def run_in_child(
    func: Callable[..., Any], *args: Any, threads: int = 1, timeout_s: float | None = None, hold: bool = True
) -> Measured:
    """Run `func(*args)` in a fresh spawned process; return its value, wall time, peak RSS and energy.

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
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_die_with_parent, initargs=(threads,))
    done = False
    try:
        future = asyncio.get_running_loop().run_in_executor(pool, _measured_call, func, args, threads, power)
        try:
            result = await asyncio.wait_for(future, timeout=limit)
        except TimeoutError:
            raise JobTimeout(limit or 0.0) from None
        done = True
        return result
    finally:
        if not done:
            _kill_children(pool)
        pool.shutdown(wait=done, cancel_futures=True)


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
