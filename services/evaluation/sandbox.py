"""Runs model-written code where it can do no harm: a separate interpreter inside bubblewrap.

Isolation comes from the kernel, not from Python: new PID, mount, network, IPC, UTS and user
namespaces (`--unshare-all`), a filesystem of only what the interpreter needs, read-only (the system
libraries and the Python installation — not the work dir, home, the repository or /etc), a private
tmpfs as /tmp and working directory, its own /proc (no other process is visible), an empty
environment, and rlimits on CPU, memory, file size and processes. The whole sandbox lives in its PID
namespace: killing it on timeout ends every process the code started, `setsid` or not. Output is
read in bounded chunks and only a tail is kept, so a flood cannot fill the agent's memory.

An audit hook in the sandboxed interpreter would be undone by the code itself (a frame walk reaches
its globals), so none is relied on. Where bubblewrap is missing or cannot create its namespaces,
HumanEval is refused (`SandboxUnavailable`) rather than run weakly.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


class SandboxUnavailable(RuntimeError):
    """No real isolation on this machine: model-written code must not run here."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    file_mb: int = 16
    max_processes: int = 64  # beyond what the user already runs: a fork bomb stops there
    output_kb: int = 64  # of stderr and of stdout, the tail kept


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    reason: str  # "passed", "failed", "timeout", "killed"
    returncode: int | None
    stderr_tail: str
    wall_s: float
    isolation: str  # "bubblewrap"
    output_dropped_bytes: int = 0


def _interpreter() -> Path:
    """The real interpreter of this Python installation (not the venv's symlink), run with -I -S."""
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (base / "bin" / version, base / "bin" / "python3"):
        if candidate.is_file():
            return candidate
    return Path(sys.executable).resolve()


def _binds() -> list[str]:
    """Read-only binds: system libraries and the Python installation, nothing else of the host."""
    args: list[str] = []
    for path in ("/usr", "/lib", "/lib64", "/bin", "/sbin"):
        p = Path(path)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), path]
        elif p.is_dir():
            args += ["--ro-bind", path, path]
    base = Path(sys.base_prefix).resolve()
    if not any(base.is_relative_to(d) for d in ("/usr", "/lib", "/lib64")):
        args += ["--ro-bind", str(base), str(base)]
    return args


def bwrap_command(bwrap: str, program_file: Path) -> list[str]:
    return [
        bwrap,
        "--unshare-all",  # user, pid, net, ipc, uts, cgroup namespaces: no network, no other processes
        "--die-with-parent",
        "--new-session",  # no terminal to inject keystrokes into
        "--cap-drop", "ALL",  # as root bwrap would keep its capabilities (and skip RLIMIT_NPROC)
        "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin",
        "--setenv", "HOME", "/tmp",
        "--setenv", "LANG", "C.UTF-8",
        *_binds(),
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--ro-bind", str(program_file), "/sandbox/program.py",
        "--chdir", "/tmp",
        str(_interpreter()), "-I", "-S", "-B", "/sandbox/program.py",
    ]  # fmt: skip


@functools.lru_cache(maxsize=4)
def check_isolation(bwrap: str | None = None) -> str:
    """The bubblewrap binary, once it has shown it can build the namespaces here; else SandboxUnavailable."""
    found = bwrap or shutil.which("bwrap")
    if not found or not Path(found).is_file():
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed: model-written code (HumanEval) is refused rather than run "
            "without isolation; install the Debian package 'bubblewrap'"
        )
    with tempfile.TemporaryDirectory(prefix="greenai-sandbox-check-") as tmp:
        probe = Path(tmp, "probe.py")
        probe.write_text("import os\nassert os.getpid() <= 3\n", encoding="utf-8")
        try:
            done = subprocess.run(bwrap_command(found, probe), capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(f"bubblewrap cannot start here: {exc}") from exc
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace")[-500:]
        raise SandboxUnavailable(f"bubblewrap cannot create its namespaces here: {err.strip()}")
    return found


class _Tail:
    """Drains a pipe to its end, keeping only the last `limit` bytes."""

    def __init__(self, stream: object, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream: object) -> None:
        read = stream.read  # type: ignore[attr-defined]
        while chunk := read(65536):
            self.data += chunk
            if len(self.data) > self.limit:
                cut = len(self.data) - self.limit
                self.dropped += cut
                del self.data[:cut]


def _limits(limits: SandboxLimits) -> None:
    # between fork and exec of bwrap; the limits hold for everything inside the sandbox
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setsid()


def _process_allowance(limits: SandboxLimits) -> int:
    """RLIMIT_NPROC counts every process of the real user: allow what runs now plus the sandbox's share."""
    uid = os.getuid()
    mine = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid == uid:
                    mine += 1
            except OSError:
                continue
    return mine + limits.max_processes


def run_untrusted(program: str, limits: SandboxLimits | None = None, bwrap: str | None = None) -> SandboxResult:
    """Exit status 0 within the limits is a pass; anything else, including being stopped, is a failure.
    Raises SandboxUnavailable where no isolation is available."""
    limits = limits or SandboxLimits()
    binary = check_isolation(bwrap)
    nproc = _process_allowance(limits)

    def setup() -> None:
        _limits(limits)
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    with tempfile.TemporaryDirectory(prefix="greenai-sandbox-") as tmp:
        program_file = Path(tmp, "program.py")
        program_file.write_text(program, encoding="utf-8")
        start = time.perf_counter()
        proc = subprocess.Popen(
            bwrap_command(binary, program_file),
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=setup,
            close_fds=True,
        )
        err = _Tail(proc.stderr, limits.output_kb * 1024)
        out = _Tail(proc.stdout, limits.output_kb * 1024)
        try:
            proc.wait(timeout=limits.timeout_s)
            # bwrap reports a child killed by a signal (SIGXCPU, SIGKILL at the memory limit) as 128 + signal
            killed = proc.returncode < 0 or proc.returncode > 128
            reason = "passed" if proc.returncode == 0 else "killed" if killed else "failed"
        except subprocess.TimeoutExpired:
            reason = "timeout"
        finally:
            # the sandbox's whole session: bwrap, its PID namespace's init and everything under it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for tail in (err, out):
            tail.thread.join(timeout=5)
        wall = time.perf_counter() - start
    tail_text = bytes(err.data).decode("utf-8", "replace")[-2000:]
    return SandboxResult(
        reason == "passed", reason, proc.returncode, tail_text, round(wall, 3), "bubblewrap", err.dropped + out.dropped
    )
