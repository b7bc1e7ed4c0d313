"""The benchmarks still run: each new bench has a smoke mode (seconds, tiny inputs) run here, so a
schema or API change breaks a test instead of a figure in bench/RESULTS.md months later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_bench(script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), "--smoke", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO,
    )  # fmt: skip


@pytest.mark.slow
def test_artifact_store_bench_smoke() -> None:
    result = run_bench("artifact_store.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| smoke" in result.stdout and "get / cp" in result.stdout


@pytest.mark.slow
def test_hostile_bench_smoke(data_dir: Path) -> None:
    result = run_bench("hostile.py", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| 0 " in result.stdout  # no agent crashed
