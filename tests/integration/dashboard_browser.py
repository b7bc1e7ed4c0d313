"""Helpers for the dashboard's browser tests: `greenai dashboard` as a real process, and a real headless
Chromium (the one the README's set-up command installs) driven by Playwright through its executable path;
no browser is downloaded. Every page collects its console errors and uncaught exceptions."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

CANDIDATES = ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium")


def chromium() -> str | None:
    """The installed Chromium's binary (the real one behind Debian's wrapper script when it is there)."""
    for path in CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return next(
        (p for b in ("chromium-headless-shell", "chromium", "chromium-browser") if (p := shutil.which(b))), None
    )


BROWSER = chromium()
try:
    import playwright  # noqa: F401

    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False

needs_browser = pytest.mark.skipif(
    BROWSER is None or not HAVE_PLAYWRIGHT,
    reason="no Chromium (apt-get install chromium-headless-shell) or no playwright (pip install playwright)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running_dashboard(
    nats_url: str, auth_dir: Path, work_dir: Path, data_dir: Path | None = None, ready_within_s: float = 90
) -> Iterator[str]:
    """`greenai dashboard` on a free port, reading the log as `viewer` and acting as `cli` when the auth
    dir holds that role's seed."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENAI_")}
    env |= {"GREENAI_NATS_URL": nats_url, "GREENAI_AUTH_DIR": str(auth_dir), "GREENAI_WORK_DIR": str(work_dir)}
    if data_dir is not None:
        env["GREENAI_DATA_DIR"] = str(data_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    log = open(work_dir / "dashboard.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenai", "dashboard", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"dashboard exited: {(work_dir / 'dashboard.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/api/experiments", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not come up in {ready_within_s:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


NOT_FOUND = "the server responded with a status of 404"


class Page:
    """A browser page and what went wrong in it. Chromium reports a 404 document as a console error; a
    test that asks for one (`expect_404`) sees every other error, and that one only for that document."""

    def __init__(self, page: Any, expect_404: str | None = None) -> None:
        self.page = page
        self.expect_404 = expect_404
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        if self.expect_404 is not None and NOT_FOUND in message.text and message.location.get("url") == self.expect_404:
            return
        self.errors.append(f"console {message.type}: {message.text} ({message.location.get('url')})")


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    assert BROWSER is not None
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            await b.close()


async def open_page(b: Any, url: str, expect_404: bool = False) -> tuple[Page, Any]:
    """A new page at `url`: the page and the main document's response."""
    page = Page(await b.new_page(), url if expect_404 else None)
    response = await page.page.goto(url)
    return page, response
