"""Job children forked from a warm fork server instead of spawned as fresh interpreters.

A spawned job child spends 5-15 s of CPU importing torch, transformers and its method's libraries
(AutoRound, datasets, peft, ...) before any work; that was most of the CPU of a small job, in every
job of every agent and test. Here the children of one process are forked from multiprocessing's
fork server, which imports torch and transformers at its start and, once idle, is restarted with
the third-party modules this process's jobs imported before (learned from the children), so a
job's child starts with them already loaded.

What a fork inherits is handled so that a job sees what a spawned child saw:
- environment and working folder: the server keeps those of its start; the child takes the
  agent's current ones (`adopt`). Variables that libraries read when imported (HF_*, OMP_*,
  TORCH*, ...) and the thread count are the server's fingerprint: when they differ the server is
  restarted once idle, and meanwhile the job is spawned.
- dying with the agent: the child's parent is the server; the server ends when the agent does
  (its "alive" pipe reaches EOF, once the child has closed its copy of the write end), and the
  child's PR_SET_PDEATHSIG then kills it.
- CUDA: a server that initialised CUDA would break it in every child; such a child refuses before
  any work (`BadFork`), the job is spawned instead and the server goes back to the base modules.
- peak memory: a forked child's ru_maxrss is its own (from its fork), not the server's.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing
import multiprocessing.forkserver as forkserver
import os
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from typing import Any

from greenai.shared.config import Settings
from greenai.shared.logging import get_logger

log = get_logger(__name__)

# imported by every server: what every model job needs (transformers' classes load lazily)
BASE_PRELOAD = (
    "torch",
    "transformers",
    "transformers.modeling_utils",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
)
# read by libraries when they are imported, so the server must have started with the job's values
IMPORT_TIME_ENV = (
    "HF_", "HUGGINGFACE", "TRANSFORMERS_", "TORCH", "PYTORCH_", "OMP_", "MKL_", "KMP_", "OPENBLAS_",
    "CUDA_", "NVIDIA_", "TOKENIZERS_", "XDG_", "BNB_", "AUTO_ROUND", "LD_", "PYTHON", "HOME", "TMPDIR",
)  # fmt: skip
PRELOAD_ENV = "_GREENAI_FORKSERVER_PRELOAD"  # set only while the server starts: its file of modules
RESTART_FOR_MODULES = 100  # or a new top-level package: a restart costs about one spawned child


class BadFork(Exception):
    """The warm server cannot give this job a clean child (CUDA initialised, server dead)."""


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    fingerprint: tuple[object, ...] | None = None
    preloaded: frozenset[str] = frozenset()
    running: int = 0  # jobs forked from the current server and not finished
    learned: dict[str, None] = field(default_factory=dict)  # in import order
    learning: bool = True
    disabled: str | None = None
    owner: int = 0  # the pid that started the server (atexit runs in that one only)
    listed: str | None = None  # the file of learned modules the next server start imports


_state = _State()
_forked_child = False  # set in a child forked from the server (adopt)


@dataclass
class Lease:
    """How one job's child starts; `close` when the job is over."""

    context: BaseContext
    forked: bool
    parent: int  # the pid the child's parent must be (else it dies at once)
    closed: bool = False

    @classmethod
    def spawned(cls) -> Lease:
        return cls(multiprocessing.get_context("spawn"), False, os.getpid())

    def initargs(self, threads: int) -> Any:  # shared.jobs._die_with_parent's
        if self.forked:
            return (threads, self.parent, dict(os.environ), os.getcwd())
        return (threads, self.parent)

    def close(self) -> None:
        if self.forked and not self.closed:
            with _state.lock:
                _state.running -= 1
        self.closed = True


def lease(threads: int) -> Lease:
    """A forked child from a server fit for this job, else a spawned one. Blocks (server restart):
    call from a thread."""
    if sys.platform != "linux" or _state.disabled or Settings().job_children == "spawned":
        return Lease.spawned()
    fingerprint = _fingerprint(threads)
    with _state.lock:
        server = _server()
        alive = server._forkserver_pid is not None
        same_env = alive and _state.fingerprint == fingerprint
        if not same_env and _state.running:
            return Lease.spawned()  # another job still runs on the old server: do not end it
        if not same_env or (not _state.running and _worth_a_restart()):
            if alive:
                server._stop()  # (closes its pipe and reaps it; no child of it runs)
            wanted = [*BASE_PRELOAD, *(_state.learned if _state.learning else ())]
            # the server gets its modules on its command line: one argument holds at most 128 KiB,
            # so the learned (thousands) go through a file that this module imports in the server
            forkserver.set_forkserver_preload([*BASE_PRELOAD, __name__])
            _state.listed = _listed(wanted[len(BASE_PRELOAD) :])
            _state.preloaded, _state.fingerprint = frozenset(wanted), fingerprint
            if not _state.owner:
                _state.owner = os.getpid()
                atexit.register(_stop_at_exit)
        with _server_env(threads, _state.listed):
            forkserver.ensure_running()  # starts it (imports run in the server), or restarts a dead one
        _state.running += 1
        pid = server._forkserver_pid
    return Lease(multiprocessing.get_context("forkserver"), True, int(pid or 0))


def learn(modules: list[str]) -> None:
    """The third-party modules a finished child had imported: the next server preloads them."""
    if not _state.learning:
        return
    with _state.lock:
        for name in modules:
            _state.learned.setdefault(name, None)


def refused(reason: str) -> None:
    """A forked child refused (BadFork): back to the base modules; if that was already so, spawn."""
    with _state.lock:
        if _state.learning and _state.learned:
            _state.learning = False
            _state.learned.clear()
            _state.fingerprint = None  # restart once idle
        else:
            _state.disabled = reason
    log.warning("job children: fork server refused", reason=reason, spawning_from_now=bool(_state.disabled))


def _server() -> Any:
    """The stdlib's one fork server of this process (its private state: pid, "alive" pipe, stop)."""
    return forkserver._forkserver


def _worth_a_restart() -> bool:
    missing = [m for m in _state.learned if m not in _state.preloaded] if _state.learning else []
    return len(missing) >= RESTART_FOR_MODULES or any("." not in m for m in missing)


def _fingerprint(threads: int) -> tuple[object, ...]:
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(IMPORT_TIME_ENV))
    return (threads, tuple(env), sys.executable)


def _listed(modules: list[str]) -> str | None:
    if not modules:
        return None
    fd, path = tempfile.mkstemp(prefix="greenai-preload-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(modules))
    return path


@contextmanager
def _server_env(threads: int, listed: str | None) -> Iterator[None]:
    """The server starts with what a spawned child set before importing anything (shared.jobs)."""
    wanted = {"OMP_NUM_THREADS": str(threads), PRELOAD_ENV: listed or ""}
    for key, default in (("OMP_WAIT_POLICY", "PASSIVE"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
        wanted[key] = os.environ.get(key, default)
    before = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _stop_at_exit() -> None:
    """Reap the server at exit, so its CPU (and its children's) counts for this process."""
    if os.getpid() == _state.owner:
        with suppress(Exception):
            _server()._stop()


# --- in the child -------------------------------------------------------------------------------


def adopt(env: dict[str, str], cwd: str | None) -> None:
    """In a child forked from the server: the agent's environment and folder, and no copy of the
    server's "alive" pipe, so that the server (and by PDEATHSIG this child) ends with the agent."""
    global _forked_child
    _forked_child = True
    server = _server()
    fd = server._forkserver_alive_fd
    if fd is not None:
        with suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None
    os.environ.clear()
    os.environ.update(env)
    if cwd is not None:
        with suppress(OSError):
            os.chdir(cwd)


def refuse_a_bad_fork() -> None:
    """Before any work in a forked child: CUDA initialised by the server cannot be used here."""
    if not _forked_child:
        return
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda._is_in_bad_fork():
        raise BadFork("the fork server had initialised CUDA (torch)")
    with suppress(OSError), open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        if "libcuda.so" in maps.read():
            raise BadFork("the fork server had loaded the CUDA driver")


def imported_libraries() -> list[str]:
    """The third-party modules (from site-packages) this child has imported, in import order."""
    paths = sysconfig.get_paths()
    roots = tuple({paths["purelib"], paths["platlib"]})
    names = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and file.startswith(roots) and not name.endswith("__main__"):
            names.append(name)
    return names


def _import_listed() -> None:
    """In the fork server (this module is in its preload): import the learned modules, each one
    whatever the others do; a module that fails is left out, never the server's end."""
    path = os.environ.pop(PRELOAD_ENV, "")
    if not path:
        return
    with suppress(OSError), open(path, encoding="utf-8") as listed:
        names = listed.read().split()
    with suppress(OSError):
        os.unlink(path)
    for name in names:
        with suppress(Exception):
            importlib.import_module(name)


if multiprocessing.parent_process() is None and sys.argv[:1] == ["-c"]:  # the fork server
    _import_listed()
