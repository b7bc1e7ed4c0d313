"""Logging survives a replaced and closed stderr (a CLI test runner's capture): later lines go to the new one."""

from __future__ import annotations

import io
import sys

import pytest

from greenai.shared.logging import configure_logging, get_logger


def test_log_lines_follow_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("console")
    get_logger("t").info("one")
    first.close()  # what typer's CliRunner does with its captured stream
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("t").info("two")
    assert "two" in second.getvalue()
