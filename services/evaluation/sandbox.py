"""Runs model-written code where it can do no harm: a separate interpreter inside bubblewrap.

Isolation comes from the kernel, not from Python: new user, PID, mount, network, IPC and UTS
namespaces, a root filesystem of only the system libraries and the Python installation (read-only;
not the work dir, home, the repository or /etc), a small private tmpfs as /tmp and working directory,
its own /proc (no other process is visible), a read-only /dev, an empty environment, and rlimits on
CPU, memory, file size and processes. The whole sandbox lives in its PID namespace: killing bwrap on
timeout ends every process the code started, `setsid` or not. Output is drained in bounded chunks
and only a tail is kept, so a flood cannot fill the caller's memory.

The kernel never applies RLIMIT_NPROC to host uid 0, so when the caller is root a small launcher
first drops to an unprivileged uid (after making the Python installation reachable to it in a
private mount namespace); the process limit is then set inside the sandbox, where it counts only the
sandbox's own processes. No preexec_fn is used: the caller (an evaluation job) runs threads.

An audit hook would be undone by the code itself (a frame walk reaches its globals), so none is
relied on. Where bubblewrap is missing or cannot build the sandbox, HumanEval is refused
(`SandboxUnavailable`, a JobError with reason "unsupported") rather than run weakly.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from greenai.shared.jobs import FailureReason, JobError

SANDBOX_UID = 65534  # the host uid sandboxed code runs as when the caller is root ("nobody")
STAGE = "/tmp/greenai-python"  # where the launcher shows root's Python installation to that uid
PROGRAM = "/sandbox/program.py"
KILL_GRACE_S = 2.0  # after the kill, how long the pipes may take to close
CHUNK = 65536


class SandboxUnavailable(JobError):
    """No real isolation on this machine: model-written code must not run here."""

    def __init__(self, message: str, reason: FailureReason = "unsupported") -> None:
        super().__init__(message, reason)


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024  # address space per process
    file_mb: int = 16
    max_processes: int = 8  # inside the sandbox's own user namespace; a fork bomb stops there
    output_kb: int = 64  # of stderr and of stdout, the tail kept
    tmp_mb: int = 32  # the private /tmp (a tmpfs: host memory)


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    reason: str  # "passed", "failed", "timeout", "killed"
    returncode: int | None
    stderr_tail: str
    wall_s: float
    isolation: str  # "bubblewrap"
    output_dropped_bytes: int = 0
    stdout_tail: str = ""


# Runs before bwrap, single-threaded: rlimits, and for root the drop to SANDBOX_UID. Stdlib only.
LAUNCHER = """
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
def fail(what):
    sys.stderr.write("sandbox launcher: %s\\n" % what)
    sys.exit(71)
try:
    exe = os.open(cfg["argv"][0], os.O_RDONLY)  # now: the stage below may cover its folder
except OSError as e:
    fail("cannot open %s: %s" % (cfg["argv"][0], e.strerror))
if cfg["stage"]:
    libc = ctypes.CDLL(None, use_errno=True)
    def must(rc, what):
        if rc != 0:
            fail("%s: %s" % (what, os.strerror(ctypes.get_errno())))
    must(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
    must(libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None), "make / private")
    stage = os.path.dirname(cfg["stage"]).encode()
    must(libc.mount(b"tmpfs", stage, b"tmpfs", 0x2 | 0x4, b"size=64k,mode=755"), "tmpfs for the stage")
    os.mkdir(cfg["stage"], 0o755)
    must(libc.mount(cfg["prefix"].encode(), cfg["stage"].encode(), None, 0x1000 | 0x4000, None), "bind Python")
    os.setgroups([])
    os.setgid(cfg["uid"])
    os.setuid(cfg["uid"])
for name, value in cfg["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
try:
    os.execve(exe, cfg["argv"], os.environ)
except OSError as e:
    fail("cannot run %s: %s" % (cfg["argv"][0], e.strerror))
"""

# First code in the sandboxed interpreter: the process limit (counted in this user namespace only),
# then a byte that says the sandbox was built, then the program.
BOOT = """
import os, resource, runpy, sys
n, ready = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
os.write(ready, b"R")
os.close(ready)
del n, ready
sys.argv = [PROGRAM]
runpy.run_path(PROGRAM, run_name="__main__")
""".replace("PROGRAM", repr(PROGRAM))

PROBE = """
import os, socket
bad = []
if os.getpid() > 3: bad.append("no PID namespace")
if len([p for p in os.listdir("/proc") if p.isdigit()]) > 3: bad.append("other processes visible")
if [n for _, n in socket.if_nameindex()] != ["lo"]: bad.append("network interfaces visible")
if set(os.environ) - {"PATH", "HOME", "LANG", "PWD"}: bad.append("environment inherited")
try:
    open("/probe", "w")
    bad.append("root filesystem writable")
except OSError:
    pass
print("isolated" if not bad else "; ".join(bad))
"""


@dataclass(frozen=True)
class _Plan:
    bwrap: str
    prefix: Path  # the Python installation, as the sandbox sees it
    interpreter: Path
    stage: bool  # root: show the installation to SANDBOX_UID through a private mount namespace


def _plan(bwrap: str | None) -> _Plan:
    found = shutil.which(bwrap or "bwrap")
    if not found:
        raise SandboxUnavailable(
            f"bubblewrap ({bwrap or 'bwrap'}) is not installed: model-written code (HumanEval) is refused "
            "rather than run without isolation; install the Debian package 'bubblewrap'"
        )
    prefix = Path(sys.base_prefix).resolve()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    interpreter = next((p for p in (prefix / "bin" / version, prefix / "bin" / "python3") if p.is_file()), None)
    if interpreter is None:
        raise SandboxUnavailable(f"no Python interpreter under {prefix}/bin to run in the sandbox")
    return _Plan(found, prefix, interpreter, os.geteuid() == 0 and prefix != Path("/usr"))


def _binds(plan: _Plan) -> list[str]:
    """Read-only: the system libraries and the Python installation, nothing else of the host."""
    args: list[str] = []
    for path in ("/usr/lib", "/usr/lib64", "/usr/lib32"):
        if Path(path).is_dir() and not Path(path).is_symlink():
            args += ["--ro-bind", path, path]
    for path in ("/lib", "/lib64", "/lib32"):
        p = Path(path)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), path]
        elif p.is_dir():
            args += ["--ro-bind", path, path]
    if plan.prefix == Path("/usr"):  # a system Python: its stdlib is in /usr/lib already
        args += ["--ro-bind", str(plan.interpreter), str(plan.interpreter)]
    else:  # at its own path: the interpreter's RUNPATH names it
        args += ["--ro-bind", STAGE if plan.stage else str(plan.prefix), str(plan.prefix)]
    return args


def bwrap_command(plan: _Plan, limits: SandboxLimits, program_fd: int, ready_fd: int) -> list[str]:
    return [
        plan.bwrap,
        "--unshare-all", "--unshare-user",  # user, pid, net, ipc, uts, cgroup: no network, no other processes
        "--disable-userns",  # and no further user namespaces from inside
        "--die-with-parent",
        "--new-session",  # no terminal to inject keystrokes into
        "--cap-drop", "ALL",
        "--hostname", "sandbox",
        "--clearenv",
        "--setenv", "PATH", f"{plan.prefix}/bin:/usr/bin:/bin",
        "--setenv", "HOME", "/tmp",
        "--setenv", "LANG", "C.UTF-8",
        *_binds(plan),
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(64 * 1024), "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev",
        "--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/tmp",
        "--ro-bind-data", str(program_fd), PROGRAM,
        "--remount-ro", "/",  # bwrap's root is a tmpfs: left writable it would be unbounded host memory
        "--chdir", "/tmp",
        str(plan.interpreter), "-I", "-S", "-B", "-c", BOOT, str(limits.max_processes), str(ready_fd),
    ]  # fmt: skip


class _Tail:
    """The last `limit` bytes of a stream, and how many were dropped before them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            cut = len(self.data) - self.limit
            self.dropped += cut
            del self.data[:cut]

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", "replace")


def _drain(proc: subprocess.Popen[bytes], limits: SandboxLimits, tails: dict[int, _Tail]) -> bool:
    """Reads the pipes (fd -> tail) until they close or the wall clock runs out; True on timeout.
    On timeout bwrap's whole session is killed: its PID namespace, and every process in it, goes too."""
    deadline = time.monotonic() + limits.timeout_s
    timed_out = False
    with selectors.DefaultSelector() as sel:
        for fd in tails:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                if timed_out:
                    break  # killed, yet a pipe stays open: stop reading, the kill stands
                timed_out = True
                _kill(proc)
                deadline = time.monotonic() + KILL_GRACE_S
                continue
            for key, _ in sel.select(timeout=left):
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                else:
                    tails[key.fd].add(chunk)
    if not timed_out:  # the pipes closed; the code may still run with them closed
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
    return timed_out


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # bwrap's session; its sandbox dies with it (--die-with-parent)


def _spawn(plan: _Plan, program: str, limits: SandboxLimits) -> SandboxResult:
    mb = 2**20
    program_fd = os.memfd_create("greenai-sandbox-program", 0)  # no file of the program on the host
    ready_r, ready_w = os.pipe()
    try:
        os.write(program_fd, program.encode("utf-8"))
        os.lseek(program_fd, 0, os.SEEK_SET)
        cfg = {
            "stage": STAGE if plan.stage else "",
            "prefix": str(plan.prefix),
            "uid": SANDBOX_UID,
            "rlimits": {
                "RLIMIT_CPU": limits.cpu_s,
                "RLIMIT_AS": limits.memory_mb * mb,
                "RLIMIT_FSIZE": limits.file_mb * mb,
                "RLIMIT_CORE": 0,
            },
            "argv": bwrap_command(plan, limits, program_fd, ready_w),
        }
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", LAUNCHER, json.dumps(cfg)],
                cwd="/",
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(program_fd, ready_w),
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxUnavailable(f"bubblewrap cannot start here: {exc}") from exc
        os.close(ready_w)
        ready_w = -1
        assert proc.stdout is not None and proc.stderr is not None
        err, out, ready = _Tail(limits.output_kb * 1024), _Tail(limits.output_kb * 1024), _Tail(16)
        try:
            timed_out = _drain(proc, limits, {proc.stderr.fileno(): err, proc.stdout.fileno(): out, ready_r: ready})
        finally:
            _kill(proc)  # whatever happened: nothing of it outlives the call
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        wall = time.perf_counter() - start
    finally:
        for fd in (program_fd, ready_r, ready_w):
            if fd >= 0:
                os.close(fd)
    rc = proc.returncode
    if not ready.data and not timed_out and rc != 0:
        raise SandboxUnavailable(f"bubblewrap could not build the sandbox here: {err.text().strip()[-500:]}")
    # bwrap reports a child killed by a signal (SIGXCPU, SIGKILL) as 128 + the signal
    reason = "timeout" if timed_out else "passed" if rc == 0 else "killed" if rc < 0 or rc > 128 else "failed"
    return SandboxResult(
        passed=reason == "passed",
        reason=reason,
        returncode=rc,
        stderr_tail=err.text()[-2000:],
        wall_s=round(wall, 3),
        isolation="bubblewrap",
        output_dropped_bytes=err.dropped + out.dropped,
        stdout_tail=out.text()[-2000:],
    )


_checked: dict[str, _Plan] = {}
_lock = threading.Lock()


def check_isolation(bwrap: str | None = None) -> str:
    """The bubblewrap binary, once it has shown it builds the sandbox here; else SandboxUnavailable.

    The probe runs through the same path as the code will, and is remembered per binary."""
    plan = _plan(bwrap)
    with _lock:
        if plan.bwrap in _checked:
            return plan.bwrap
    result = _spawn(plan, PROBE, SandboxLimits(timeout_s=20, cpu_s=10))
    if not result.passed or result.stdout_tail.strip() != "isolated":
        detail = result.stdout_tail.strip() or result.stderr_tail.strip()[-500:] or result.reason
        raise SandboxUnavailable(f"bubblewrap does not isolate here ({detail}): HumanEval is refused")
    with _lock:
        _checked[plan.bwrap] = plan
    return plan.bwrap


def run_untrusted(program: str, limits: SandboxLimits | None = None, bwrap: str | None = None) -> SandboxResult:
    """Exit status 0 within the limits is a pass; anything else, including being stopped, is a failure.
    Raises SandboxUnavailable where no isolation is available."""
    binary = check_isolation(bwrap)
    return _spawn(_checked[binary], program, limits or SandboxLimits())
