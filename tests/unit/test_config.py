from __future__ import annotations

from pathlib import Path

import pytest

from greenai.shared.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("GREENAI_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    s = load_settings()
    assert s.nats_url is None and s.max_attempts == 3
    assert s.work_dir == (Path.cwd() / "data").resolve()


def test_flags_beat_environment_beat_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "greenai.toml").write_text('max_attempts = 5\nack_wait_s = 9.0\nnats_url = "nats://file:1"\n')
    s = load_settings()
    assert (s.max_attempts, s.ack_wait_s, s.nats_url) == (5, 9.0, "nats://file:1")
    monkeypatch.setenv("GREENAI_NATS_URL", "nats://env:2")
    monkeypatch.setenv("GREENAI_MAX_ATTEMPTS", "7")
    s = load_settings()
    assert (s.max_attempts, s.ack_wait_s, s.nats_url) == (7, 9.0, "nats://env:2")
    s = load_settings(nats_url="nats://flag:3", max_attempts=None)
    assert (s.max_attempts, s.nats_url) == (7, "nats://flag:3")


def test_config_file_location_can_be_chosen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text("torch_threads = 4\n")
    monkeypatch.setenv("GREENAI_CONFIG", str(cfg))
    assert Settings().torch_threads == 4


def test_bad_values_are_refused_with_the_field_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENAI_MAX_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="max_attempts"):
        load_settings()


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "greenai.toml").write_text("max_attempt = 2\n")
    with pytest.raises(ValueError, match="max_attempt"):
        load_settings()


def test_missing_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GREENAI_DATA_DIR"):
        load_settings().require_data_dir()
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(data_dir=tmp_path / "nope").require_data_dir()
