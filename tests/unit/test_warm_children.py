"""Job children forked from the warm fork server behave as spawned ones did: the agent's current
environment and folder, per-job peak memory, death with the agent, a server fit for the job's
import-time environment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from greenai.shared import warm_children
from greenai.shared.jobs import run_in_child

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _base_modules_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Learning restarts the server with what this test process's children imported (pytest's own
    modules included): seconds of CPU that say nothing about what is tested here."""
    monkeypatch.setattr(warm_children._state, "learning", False)


def _seen() -> dict[str, object]:
    import huggingface_hub.constants as hub

    return {
        "env": os.environ.get("GREENAI_WARM_PROBE"),
        "cwd": os.getcwd(),
        "offline_env": os.environ.get("HF_HUB_OFFLINE"),
        "offline_imported": hub.HF_HUB_OFFLINE,
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
    }


def _allocate(mb: int) -> int:
    block = bytearray(mb * 2**20)
    for i in range(0, len(block), 4096):  # touched: resident
        block[i] = 1
    return len(block)


def _pid_then_sleep(path: str) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(120)


def test_a_forked_child_sees_the_agents_current_environment_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREENAI_WARM_PROBE", "first")
    first = asyncio.run(run_in_child(_seen, hold=False)).value
    assert first["env"] == "first" and first["pgid"] != os.getpgid(0)  # a group of its own, as before
    # set after the server started: the child reads the agent's values, not the server's
    monkeypatch.setenv("GREENAI_WARM_PROBE", "second")
    monkeypatch.chdir(tmp_path)
    second = asyncio.run(run_in_child(_seen, hold=False)).value
    assert second["env"] == "second" and second["cwd"] == str(tmp_path)
    assert os.getpid() != second["ppid"] == warm_children._server()._forkserver_pid  # forked, not spawned


def test_peak_memory_is_the_jobs_own_not_the_servers_or_an_earlier_jobs() -> None:
    big = asyncio.run(run_in_child(_allocate, 400, hold=False))
    small = asyncio.run(run_in_child(_allocate, 1, hold=False))
    assert big.value == 400 * 2**20
    assert big.peak_rss_mb > small.peak_rss_mb + 300, (big.peak_rss_mb, small.peak_rss_mb)


AGENT = """
import asyncio, sys
from tests.unit.test_warm_children import _pid_then_sleep
from greenai.shared.jobs import run_in_child
asyncio.run(run_in_child(_pid_then_sleep, sys.argv[1], hold=False))
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return status != "Z"


def test_a_forked_child_dies_with_its_agent_killed_hard(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    agent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(AGENT), str(marker)], cwd=REPO, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.is_file() or not marker.read_text():
            assert agent.poll() is None and time.monotonic() < deadline, "the job never started"
            time.sleep(0.2)
        child = int(marker.read_text())
        assert _alive(child)
        agent.send_signal(signal.SIGKILL)  # no cleanup runs in the agent
        agent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, "the job's child outlived its agent"
            time.sleep(0.1)
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)


def test_a_module_that_fails_in_the_server_is_left_out_not_the_servers_end(tmp_path: Path) -> None:
    listed = tmp_path / "modules.txt"
    listed.write_text("colorsys\ngreenai_no_such_module\nantigravity_is_not_imported_here.x\n")
    code = (
        "import os, sys; sys.argv = ['-c'];"
        f"os.environ[{warm_children.PRELOAD_ENV!r}] = {str(listed)!r};"
        "import greenai.shared.warm_children as w; print('colorsys' in sys.modules, os.path.exists("
        f"{str(listed)!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False"]  # imported what it could; the file read and removed


def test_a_variable_read_at_import_gets_a_server_started_with_the_jobs_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE when imported: a server started before would be stale
    flipped = "0" if os.environ.get("HF_HUB_OFFLINE") == "1" else "1"
    monkeypatch.setenv("HF_HUB_OFFLINE", flipped)
    seen = asyncio.run(run_in_child(_seen, hold=False)).value
    assert seen["offline_env"] == flipped and seen["offline_imported"] is (flipped == "1")


def test_spawned_children_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    # the way back to fresh interpreters, should a library not survive a fork on some host
    monkeypatch.setenv("GREENAI_JOB_CHILDREN", "spawned")
    lease = warm_children.lease(1)
    assert not lease.forked
