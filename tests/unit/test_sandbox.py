"""Model-written code in the sandbox: each attack that broke the old one is a test that fails to escape."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from greenai.events import new_event
from greenai.events.jobs import ArtifactRef, EvaluateRequested
from greenai.services.evaluation.benchmarks import humaneval
from greenai.services.evaluation.benchmarks.auto import benchmark
from greenai.services.evaluation.benchmarks.base import write_docs
from greenai.services.evaluation.sandbox import (
    PROGRAM,
    SandboxLimits,
    SandboxUnavailable,
    check_isolation,
    run_untrusted,
)
from greenai.shared.config import Settings
from greenai.shared.jobs import JobError

QUICK = SandboxLimits(timeout_s=5, cpu_s=3, memory_mb=512)
REPO = Path(__file__).resolve().parents[2]
SLACK_S = 1.5  # a stopped sandbox returns within its timeout plus this


def sandboxed() -> list[psutil.Process]:
    """Interpreters still running a sandboxed program (their command line names it)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        with_program = any(PROGRAM in part for part in p.info["cmdline"] or [])
        if with_program and p.pid != os.getpid():
            found.append(p)
    return found


def write_victim(victim: Path) -> str:
    return f"open({str(victim)!r}, 'w').write('pwned')"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A live listener on the host's loopback: nothing from the sandbox may ever reach it."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        srv.setblocking(False)
        yield srv
        with pytest.raises(BlockingIOError):
            srv.accept()  # no connection ever arrived


def test_a_correct_program_passes_and_a_failing_assert_fails() -> None:
    r = run_untrusted("assert sum([1, 2]) == 3\nprint('ok')\n", QUICK)
    assert r.passed and r.isolation == "bubblewrap" and r.stdout_tail == "ok\n"
    r = run_untrusted("assert sum([1, 2]) == 4\n", QUICK)
    assert not r.passed and r.reason == "failed" and "AssertionError" in r.stderr_tail


def test_an_infinite_loop_and_a_sleep_are_stopped() -> None:
    r = run_untrusted("while True:\n    pass\n", SandboxLimits(timeout_s=3, cpu_s=2))
    assert not r.passed and r.reason in {"timeout", "killed"} and r.wall_s < 3 + SLACK_S
    r = run_untrusted("import time\ntime.sleep(60)\n", SandboxLimits(timeout_s=2, cpu_s=2))
    assert not r.passed and r.reason == "timeout" and r.wall_s < 2 + SLACK_S


def test_allocating_10_gb_fails() -> None:
    r = run_untrusted("x = bytearray(10 * 1024 ** 3)\nx[-1] = 1\n", QUICK)
    assert not r.passed and "MemoryError" in r.stderr_tail


def test_a_socket_to_a_live_listener_reaches_nobody(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    r = run_untrusted(
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hi')\n", QUICK
    )
    assert not r.passed and "ConnectionRefusedError" in r.stderr_tail  # its own, empty network


def test_a_subprocess_runs_only_inside_the_sandbox(tmp_path: Path) -> None:
    victim = tmp_path / "from-subprocess"
    program = (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {write_victim(victim)!r}])\n"
        "r = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid(), sorted(os.listdir(\"/\")))'],\n"
        "                   capture_output=True, text=True, check=True)\n"
        "print(r.stdout)\n"
    )
    r = run_untrusted(program, QUICK)
    assert r.passed, r.stderr_tail
    assert "'sandbox'" in r.stdout_tail and "'work'" not in r.stdout_tail and "'etc'" not in r.stdout_tail
    assert "Permission denied" in r.stderr_tail or "No such file" in r.stderr_tail
    assert not victim.exists()


def test_the_frame_walk_that_disabled_the_audit_hook_gains_nothing(tmp_path: Path, listener: socket.socket) -> None:
    """The old attack: clear the hook's deny list, then subprocess, ctypes and fork. Here there is no hook
    to clear; they all run, and still reach no host file, no network, and no new namespace."""
    victim = tmp_path / "pwned"
    port = listener.getsockname()[1]
    program = (
        "import sys\n"
        "f = sys._getframe()\n"
        "while f is not None:\n"
        "    for k in list(f.f_globals):\n"
        "        if k.startswith(('_DENY', '_ALLOW')):\n"
        "            f.f_globals[k] = ()\n"
        "    f = f.f_back\n"
        "import ctypes, os, socket, subprocess\n"
        f"subprocess.run([sys.executable, '-c', {write_victim(victim)!r}])\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('unshare', libc.unshare(0x10000000), 'setuid', libc.setuid(0))\n"  # new user ns; become root
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        f"        open({str(victim)!r}, 'w').write('pwned')\n"
        "    except OSError as e:\n"
        "        print('child', type(e).__name__, flush=True)\n"
        "    try:\n"
        f"        socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'pwned')\n"
        "    except OSError as e:\n"
        "        print('child', type(e).__name__, flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    r = run_untrusted(program, QUICK)
    assert r.passed, r.stderr_tail  # it may do all of this inside
    assert "unshare -1" in r.stdout_tail  # no user namespace from inside: no way to regain capabilities
    assert "child FileNotFoundError" in r.stdout_tail and "child ConnectionRefusedError" in r.stdout_tail
    assert not victim.exists()


def test_a_setsid_grandchild_sleeping_forever_dies_with_the_sandbox() -> None:
    marker = f"greenai-sandbox-test-{os.getpid()}-{time.monotonic_ns()}"
    program = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(10**6)', {marker!r}])\n"
        "    os._exit(0)\n"
        "time.sleep(3600)\n"
    )
    start = time.monotonic()
    r = run_untrusted(program, SandboxLimits(timeout_s=2, cpu_s=2))
    assert r.reason == "timeout" and time.monotonic() - start < 2 + SLACK_S
    time.sleep(0.3)
    survivors = [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
    assert survivors == [] and sandboxed() == []


def test_no_secret_reaches_the_code_through_env_or_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-must-not-leak-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    program = (
        "import glob, os\n"
        "seen, read = [str(dict(os.environ))], []\n"
        f"paths = ['/proc/%d/environ' % os.getppid(), '/proc/1/environ', '/proc/{os.getpid()}/environ']\n"
        "for p in paths + glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        seen.append(open(p, 'rb').read().decode('latin-1'))\n"
        "        read.append(p)\n"
        "    except OSError:\n"
        "        pass\n"
        f"print('LEAKED' if any({secret!r} in s or 'OPENAI_API_KEY' in s for s in seen) else 'clean', read)\n"
        "print(seen[0])\n"
    )
    r = run_untrusted(program, QUICK)
    assert r.passed and r.stdout_tail.startswith("clean"), r.stdout_tail + r.stderr_tail
    assert "/proc/1/environ" in r.stdout_tail  # it could read its own namespace's init: nothing in it
    assert secret not in r.stdout_tail + r.stderr_tail


def test_nothing_is_written_outside_and_the_work_dir_and_home_are_not_visible(tmp_path: Path) -> None:
    home = Path.home()
    targets = [tmp_path / "planted", REPO / "greenai-sandbox-planted", home / "greenai-sandbox-planted"]
    program = (
        "import os\n"
        f"for p in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        open(p, 'w').write('x')\n"
        "        print('WROTE', p)\n"
        "    except OSError:\n"
        "        pass\n"
        f"print('SEEN', [os.path.exists(p) for p in ({str(tmp_path)!r}, {str(REPO)!r}, {str(home / '.ssh')!r})])\n"
        "open('scratch.txt', 'w').write('its own tmp is writable')\n"
        "for p in ['/etc/passwd', '/planted', '/usr/lib/planted']:\n"
        "    try:\n"
        "        open(p, 'a').write('x')\n"
        "        print('WROTE', p)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    r = run_untrusted(program, QUICK)
    assert r.passed, r.stderr_tail
    assert "WROTE" not in r.stdout_tail and "SEEN [False, False, False]" in r.stdout_tail
    assert not any(t.exists() for t in targets)


def test_filling_the_private_tmp_stops_at_its_size() -> None:
    program = (
        "import os\n"
        "for n in range(100):\n"
        "    try:\n"
        "        open(f'/tmp/fill{n}', 'wb').write(b'x' * (8 << 20))\n"
        "    except OSError as e:\n"
        "        print('stopped after', n, type(e).__name__)\n"
        "        break\n"
    )
    r = run_untrusted(program, SandboxLimits(timeout_s=10, tmp_mb=16))
    assert r.passed and "stopped after" in r.stdout_tail and "OSError" in r.stdout_tail


def test_an_output_flood_is_cut_and_the_parent_stays_small() -> None:
    me = psutil.Process()
    before = me.memory_info().rss
    program = (
        "import sys\nchunk = 'x' * (1 << 20)\n"
        "for _ in range(150):\n    sys.stdout.write(chunk); sys.stderr.write(chunk)\n"
    )
    r = run_untrusted(program, SandboxLimits(timeout_s=30, cpu_s=20))
    assert r.reason in {"passed", "timeout"}
    if r.passed:
        assert r.output_dropped_bytes > 290 * 2**20
    assert len(r.stderr_tail) <= 2000 and len(r.stdout_tail) <= 2000
    assert (me.memory_info().rss - before) / 2**20 < 50


def test_the_process_limit_holds_even_for_a_root_caller() -> None:
    """The kernel skips RLIMIT_NPROC for host uid 0: the sandbox must not run as it."""
    program = (
        "import os, time\nn = 0\n"
        "for _ in range(40):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(3)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "    except OSError:\n"
        "        break\n"
        "print('forked', n)\n"
    )
    r = run_untrusted(program, SandboxLimits(timeout_s=5, max_processes=6))
    assert r.passed and r.stdout_tail.split() == ["forked", "4"]  # 6 = bwrap's init + the program + 4


def test_a_fork_bomb_is_contained() -> None:
    start = time.monotonic()
    r = run_untrusted("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                      SandboxLimits(timeout_s=3, cpu_s=2))  # fmt: skip
    assert not r.passed and time.monotonic() - start < 3 + SLACK_S
    time.sleep(0.3)
    assert sandboxed() == []


def test_without_bubblewrap_model_written_code_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="not installed") as info:
        check_isolation(str(tmp_path / "no-bwrap"))
    assert isinstance(info.value, JobError) and info.value.reason == "unsupported"
    with pytest.raises(SandboxUnavailable):
        run_untrusted("print(1)\n", QUICK, bwrap=str(tmp_path / "no-bwrap"))


def test_a_bubblewrap_that_cannot_build_the_sandbox_is_refused(tmp_path: Path) -> None:
    """As where user namespaces are forbidden: the self-check fails, so no model-written code runs at all."""
    broken = tmp_path / "bwrap"
    broken.symlink_to(shutil.which("env") or "/usr/bin/env")  # a real binary that refuses bwrap's options
    with pytest.raises(SandboxUnavailable, match=r"could not build the sandbox here: .*unrecognized option"):
        check_isolation(str(broken))


async def test_humaneval_is_refused_when_bubblewrap_is_missing(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on the PATH
    bench = benchmark("humaneval")
    doc = bench.documents(data_dir)[0]
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        humaneval.score(doc, "    return True\n")
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):  # in the job, before any generation
        bench.task_config(write_docs([doc], tmp_path))
    from greenai.services.evaluation.agent import EvaluationAgent  # here: the agent's imports are not under test

    settings = Settings(work_dir=tmp_path, data_dir=data_dir)
    data = EvaluateRequested(job_id="eval1", episode=1, target=ArtifactRef(kind="base", model="m"), task="humaneval")
    with pytest.raises(JobError, match="bubblewrap") as info:  # the agent: a failure event, not a weak run
        await EvaluationAgent(settings).handle(new_event("exp", data, producer="test", key="e1"))
    assert info.value.reason == "unsupported"
