"""Model-written code runs in the sandbox: what misbehaves is stopped and scored as a failure."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from greenai.services.evaluation.sandbox import SandboxLimits, run_untrusted

QUICK = SandboxLimits(timeout_s=5, cpu_s=3, memory_mb=512)


def test_a_correct_program_passes_and_a_failing_assert_fails() -> None:
    assert run_untrusted("assert sum([1, 2]) == 3\n", QUICK).passed
    r = run_untrusted("assert sum([1, 2]) == 4\n", QUICK)
    assert not r.passed and r.reason == "failed" and "AssertionError" in r.stderr_tail


def test_an_infinite_loop_is_stopped() -> None:
    r = run_untrusted("while True:\n    pass\n", SandboxLimits(timeout_s=3, cpu_s=2))
    assert not r.passed and r.reason in {"timeout", "killed"} and r.wall_s < 6


def test_a_sleeping_program_is_stopped_by_the_wall_clock() -> None:
    r = run_untrusted("import time\ntime.sleep(60)\n", SandboxLimits(timeout_s=2, cpu_s=2))
    assert not r.passed and r.reason == "timeout" and r.wall_s < 5


def test_allocating_10_gb_fails() -> None:
    r = run_untrusted("x = bytearray(10 * 1024 ** 3)\nx[-1] = 1\n", QUICK)
    assert not r.passed and "MemoryError" in r.stderr_tail


def test_opening_a_socket_fails_and_reaches_nobody() -> None:
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
    assert r.network_isolation in {"namespace", "audit-hook"}


def test_subprocesses_are_refused() -> None:
    r = run_untrusted("import subprocess\nsubprocess.run(['true'], check=True)\n", QUICK)
    assert not r.passed and "not allowed" in r.stderr_tail
    r = run_untrusted("import os\nos.system('true')\n", QUICK)
    assert not r.passed


def test_no_secret_is_inherited_and_the_directory_is_thrown_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    program = (
        "import os, sys\n"
        "assert 'OPENAI_API_KEY' not in os.environ, 'secret leaked'\n"
        "assert not any('sk-must-not-leak' in v for v in os.environ.values())\n"
        "open('scratch.txt', 'w').write('x')\n"
        "sys.stderr.write('CWD=' + os.getcwd())\n"
    )
    r = run_untrusted(program, QUICK)
    assert r.passed, r.stderr_tail
    cwd = r.stderr_tail.split("CWD=")[1].strip()
    assert cwd != os.getcwd() and not Path(cwd).exists()
