"""Runs model-written code where it can do no harm: a separate process with a wall-clock timeout,
CPU-time, memory, file-size and process-count limits, no network, a throw-away directory and an
empty environment (no inherited secrets).

No network is enforced twice: the child enters a new network namespace when the kernel allows it
(only a loopback that is down), and an audit hook installed before the untrusted code runs refuses
sockets, subprocesses and `ctypes` (which could undo the hook) however they are reached.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

# Runs first in the child, before the untrusted program: the hook cannot be removed once added.
GUARD = textwrap.dedent(
    """
    import sys
    _DENY = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
             "os.forkpty", "pty.", "ctypes.", "shutil.rmtree", "os.kill", "os.killpg", "signal.pthread_kill")
    _ALLOW = ("socket.gethostname",)
    def _guard(event, args):
        if event.startswith(_DENY) and not event.startswith(_ALLOW):
            raise PermissionError(f"sandbox: {event} is not allowed")
    sys.addaudithook(_guard)
    del _guard
    import runpy
    runpy.run_path("program.py", run_name="__main__")
    """
)


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    file_mb: int = 16
    max_processes: int = 256


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    reason: str  # "passed", "failed", "timeout", "killed", "error"
    returncode: int | None
    stderr_tail: str
    wall_s: float
    network_isolation: str  # "namespace" or "audit-hook"


def _unshare_network(libc: Any) -> bool:
    # as root a network namespace; otherwise inside a new (unprivileged) user namespace, where the kernel allows one
    return any(libc.unshare(flags) == 0 for flags in (CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNET))


def _child_setup(limits: SandboxLimits, report_fd: int, libc: Any) -> None:
    # runs between fork and exec: only system calls here, nothing that imports or takes a lock
    os.setsid()
    isolated = _unshare_network(libc)
    os.write(report_fd, b"N" if isolated else b"H")
    os.close(report_fd)
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))


def run_untrusted(program: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Exit status 0 within the limits is a pass; anything else, including being stopped, is a failure."""
    import ctypes

    limits = limits or SandboxLimits()
    libc = ctypes.CDLL(None, use_errno=True)  # resolved here: the child must not import after fork
    with tempfile.TemporaryDirectory(prefix="greenai-sandbox-") as tmp:
        Path(tmp, "program.py").write_text(program, encoding="utf-8")
        read_fd, write_fd = os.pipe()
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", GUARD],  # isolated mode: no PYTHON* variables, no user site
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
            preexec_fn=lambda: _child_setup(limits, write_fd, libc),
            close_fds=True,
        )
        os.close(write_fd)
        isolation = "namespace" if os.read(read_fd, 1) == b"N" else "audit-hook"
        os.close(read_fd)
        try:
            _, err = proc.communicate(timeout=limits.timeout_s)
            reason = "passed" if proc.returncode == 0 else "killed" if proc.returncode < 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: whatever it started goes too
            _, err = proc.communicate()
            reason = "timeout"
        wall = time.perf_counter() - start
    tail = err.decode("utf-8", "replace")[-2000:]
    return SandboxResult(reason == "passed", reason, proc.returncode, tail, round(wall, 3), isolation)
