"""The Pareto chart opens in a real headless Chromium: plotly renders its plots, no script errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from greenai.projections.pareto import pareto_front
from greenai.shared.reports.charts import pareto_html
from tests import factories as f

BROWSER = next((b for b in ("chromium-headless-shell", "chromium", "chromium-browser") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium here (apt-get install chromium-headless-shell)")


def open_in_chromium(page: Path) -> tuple[str, list[str]]:
    """The rendered DOM and the page's console messages."""
    assert BROWSER is not None
    done = subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--log-level=0",
         "--enable-unsafe-swiftshader", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def test_the_check_sees_a_script_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>noSuchFunction();</script></body></html>")
    _, console = open_in_chromium(page)
    assert any("Uncaught ReferenceError" in line for line in console)


def test_pareto_visualization_renders_without_script_errors(tmp_path: Path) -> None:
    events = [f.run(), f.spec(), f.evaluated("e", 0, 0.6, 50, 500, 4000)]
    events += [f.decided("e", 1), f.evaluated("e", 1, 0.55, 30, 300, 2000)]
    events += [f.decided("e", 2), f.evaluated("e", 2, 0.4, 40, 400, 3000)]
    page = tmp_path / "pareto_visualization.html"
    page.write_text(pareto_html(pareto_front(events), "test"), encoding="utf-8")
    dom, console = open_in_chromium(page)
    # Chromium also logs its own advice (canvas readback, software WebGL); errors are what we look for
    problems = [line for line in console if re.search(r"Uncaught|Error|error|Failed|not supported", line)]
    assert problems == [], problems
    assert dom.count('class="main-svg"') >= 5  # plotly drew the 2x2 grid and the 3-D view
