"""What a job handler may raise, and running heavy work in a fresh child process.

Heavy work (loading, quantizing, evaluating a model) runs in a spawned child so that its peak
memory is measured for that job alone, a crash cannot take the agent down, and the child dies
with its agent (PR_SET_PDEATHSIG) instead of running on as an orphan.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

FailureReason = Literal["unsupported", "invalid", "error"]


class JobError(Exception):
    """A job that cannot succeed however often it is retried (bad settings, hardware it needs)."""

    def __init__(self, message: str, reason: FailureReason = "invalid") -> None:
        super().__init__(message, reason)
        self.message = message
        self.reason = reason

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Measured:
    value: Any
    wall_s: float
    peak_rss_mb: float


def _die_with_parent(threads: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _measured_call(func: Callable[..., Any], args: tuple[Any, ...], threads: int) -> Measured:
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    value = func(*args)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Measured(value=value, wall_s=wall, peak_rss_mb=peak_kb / 1024.0)


async def run_in_child(func: Callable[..., Any], *args: Any, threads: int = 1) -> Measured:
    """Run `func(*args)` in a fresh spawned process; return its value, wall time and peak RSS.

    `func` must be importable (module level); exceptions come back as raised in the child.
    """
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_die_with_parent, initargs=(threads,)) as pool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, _measured_call, func, args, threads)
