"""Model-written code in the sandbox: each attack that broke the old one is a test that fails to escape."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil
import pytest

from greenai.services.evaluation.sandbox import SandboxLimits, SandboxUnavailable, check_isolation, run_untrusted

QUICK = SandboxLimits(timeout_s=5, cpu_s=3, memory_mb=512)


def test_a_correct_program_passes_and_a_failing_assert_fails() -> None:
    r = run_untrusted("assert sum([1, 2]) == 3\n", QUICK)
    assert r.passed and r.isolation == "bubblewrap"
    r = run_untrusted("assert sum([1, 2]) == 4\n", QUICK)
    assert not r.passed and r.reason == "failed" and "AssertionError" in r.stderr_tail


def test_an_infinite_loop_and_a_sleep_are_stopped() -> None:
    r = run_untrusted("while True:\n    pass\n", SandboxLimits(timeout_s=3, cpu_s=2))
    assert not r.passed and r.reason in {"timeout", "killed"} and r.wall_s < 5
    r = run_untrusted("import time\ntime.sleep(60)\n", SandboxLimits(timeout_s=2, cpu_s=2))
    assert not r.passed and r.reason == "timeout" and r.wall_s < 4


def test_allocating_10_gb_fails() -> None:
    r = run_untrusted("x = bytearray(10 * 1024 ** 3)\nx[-1] = 1\n", QUICK)
    assert not r.passed and "MemoryError" in r.stderr_tail


def test_a_socket_to_a_live_listener_reaches_nobody() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        program = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hi')\n"
        r = run_untrusted(program, QUICK)
        assert not r.passed
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection ever arrived


def test_the_frame_walk_that_disabled_the_audit_hook_gains_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "pwned"
    program = (
        "import sys\n"
        "f = sys._getframe()\n"
        "while f is not None:\n"
        "    for k in list(f.f_globals):\n"
        "        if k.startswith('_DENY'):\n"
        "            f.f_globals[k] = ()\n"
        "    f = f.f_back\n"
        "import subprocess, ctypes, os\n"
        f"subprocess.run(['sh', '-c', 'echo pwned > {victim}'])\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        f"    open('{victim}', 'w').write('pwned')\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    run_untrusted(program, QUICK)  # it may fork inside; it cannot reach the host's files
    assert not victim.exists()


def test_a_setsid_grandchild_dies_with_the_sandbox() -> None:
    marker = str(970000 + os.getpid() % 10000)
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execvp('sleep', ['sleep', '{marker}'])\n"
        "    os._exit(0)\n"
        "time.sleep(3600)\n"
    )
    start = time.monotonic()
    r = run_untrusted(program, SandboxLimits(timeout_s=2, cpu_s=2))
    assert r.reason == "timeout" and time.monotonic() - start < 4
    time.sleep(0.3)
    survivors = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]
    assert survivors == []


def test_no_secret_reaches_the_code_through_env_or_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak-0123456789")
    program = (
        "import os, glob, sys\n"
        "seen = [str(dict(os.environ))]\n"
        "for p in ['/proc/%d/environ' % os.getppid(), '/proc/1/environ'] + glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        seen.append(open(p, 'rb').read().decode('latin-1'))\n"
        "    except OSError as e:\n"
        "        seen.append(repr(e))\n"
        "sys.stderr.write('\\n'.join(seen)[-1800:])\n"
        "sys.exit(1)\n"
    )
    r = run_untrusted(program, QUICK)
    assert "sk-must-not-leak" not in r.stderr_tail
    assert "PATH" in r.stderr_tail  # it did run and print


def test_nothing_is_written_outside_and_the_work_dir_and_home_are_not_visible(tmp_path: Path) -> None:
    targets = [tmp_path / "planted", Path("/root/greenai-sandbox-planted"), Path("/work/greenai-sandbox-planted")]
    program = (
        "import os, sys\n"
        f"for p in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        open(p, 'w').write('x')\n"
        "    except OSError:\n"
        "        pass\n"
        f"sys.stderr.write('LIST=' + repr([os.path.exists(p) for p in ({str(tmp_path)!r}, '/work', '/root/.ssh')]))\n"
        "open('scratch.txt', 'w').write('its own tmp is writable')\n"
    )
    r = run_untrusted(program, QUICK)
    assert r.passed, r.stderr_tail
    assert not any(t.exists() for t in targets)
    assert "LIST=[False, False, False]" in r.stderr_tail


def test_an_output_flood_is_cut_and_the_parent_stays_small() -> None:
    me = psutil.Process()
    before = me.memory_info().rss
    program = (
        "import sys\nchunk = 'x' * (1 << 20)\n"
        "for _ in range(150):\n    sys.stdout.write(chunk); sys.stderr.write(chunk)\n"
    )
    r = run_untrusted(program, SandboxLimits(timeout_s=20, cpu_s=15))
    assert r.output_dropped_bytes > 250 * 2**20
    assert len(r.stderr_tail) <= 2000
    assert (me.memory_info().rss - before) / 2**20 < 50


def test_a_fork_bomb_is_contained() -> None:
    before = len(psutil.pids())
    start = time.monotonic()
    program = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    r = run_untrusted(program, SandboxLimits(timeout_s=3, cpu_s=2))
    assert not r.passed and time.monotonic() - start < 15  # the PID namespace dies whole at the timeout
    time.sleep(0.5)
    assert len(psutil.pids()) < before + 20


def test_without_isolation_model_written_code_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="not installed"):
        check_isolation(str(tmp_path / "no-bwrap"))
    with pytest.raises(SandboxUnavailable):
        run_untrusted("print(1)\n", QUICK, bwrap=str(tmp_path / "no-bwrap"))
