"""bench/dashboard.py still runs (its smoke mode: seconds, a small log), so an API change breaks a test
rather than a figure in bench/RESULTS.md."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.integration.dashboard_browser import needs_browser

pytestmark = [pytest.mark.slow, needs_browser]


def test_dashboard_bench_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "dashboard.py"), "--smoke"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "append -> point on the page" in result.stdout
    assert "console errors: 0" in result.stdout
