"""Settings: CLI flags > GREENAI_* environment > config file (greenai.toml) > defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _config_file() -> Path:
    return Path(os.environ.get("GREENAI_CONFIG", "greenai.toml"))


class Settings(BaseSettings):
    """Every knob of the system, one place.

    `data_dir` holds the benchmark files (read only, e.g. ../shared/data); `work_dir` is where the
    system writes: artifacts, converted models, experiment folders and the embedded NATS store.
    """

    model_config = SettingsConfigDict(env_prefix="GREENAI_", extra="forbid", validate_default=True)

    nats_url: str | None = Field(
        default=None, description="NATS server to use; unset: start (or reuse) an embedded nats-server."
    )
    data_dir: Path | None = Field(default=None, description="Benchmark files (<data_dir>/<benchmark>/...).")
    work_dir: Path = Field(default=Path("data"), description="Artifacts, experiments, caches, NATS store.")
    stream: str = Field(default="GREENAI_EVENTS", description="JetStream stream holding the event log.")
    duplicate_window_s: float = Field(default=3600.0, gt=0)
    ack_wait_s: float = Field(
        default=10.0, gt=0, description="A job not acked or extended (heartbeats) by then is redelivered."
    )
    max_attempts: int = Field(default=3, ge=1, description="Deliveries of one job before it is given up.")
    job_timeout_s: dict[str, float] = Field(
        default_factory=lambda: {"quantize": 7200.0, "prune": 3600.0, "lora": 7200.0, "evaluate": 7200.0},
        description="Per job kind: a child still running after this long is killed and the job fails (timeout).",
    )
    default_job_timeout_s: float = Field(default=7200.0, gt=0, description="For job kinds not in job_timeout_s.")
    job_children: Literal["forked", "spawned"] = Field(
        default="forked",
        description="Job children forked from a warm server that imported torch (less CPU), or spawned afresh.",
    )
    announce_interval_s: float = Field(
        default=60.0, gt=0, le=3600, description="How often an agent repeats what it offers (its heartbeat)."
    )
    capability_wait_s: float = Field(
        default=60.0, ge=0, description="How long a decision waits for a first agent to announce its methods."
    )
    replicas: int = Field(default=1, ge=1, le=5, description="Replicas of the stream, consumers and object store.")
    outage_budget_s: float = Field(
        default=120.0, gt=0, description="How long an agent retries NATS before it exits with one clear line."
    )
    max_event_bytes: int = Field(
        default=256 * 1024, ge=1024, description="An event larger than this is refused before it is appended."
    )
    stream_max_msg_bytes: int = Field(default=512 * 1024, ge=1024, description="The stream's max_msg_size.")
    stream_max_bytes: int | None = Field(default=None, ge=1, description="Optional cap on the stream's size.")
    stream_max_age_s: float | None = Field(default=None, gt=0, description="Optional age limit on events.")
    artifact_bucket: str = Field(
        default="greenai-artifacts", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="JetStream object store bucket."
    )
    artifact_chunk_bytes: int = Field(default=1024 * 1024, ge=4096, le=8 * 1024 * 1024)
    credentials: Path | None = Field(
        default=None, description="This process's NATS credentials file (written by `greenai auth init`)."
    )
    auth_dir: Path | None = Field(
        default=None, description="Folder of `greenai auth init` output; default <work_dir>/auth."
    )
    tls_ca: Path | None = Field(default=None, description="CA certificate to verify a TLS NATS server with.")
    model_roots: list[Path] = Field(
        default_factory=list, description="Folders besides <work_dir>/models whose models a run request may name."
    )
    memory_limit_mb: float | None = Field(
        default=None, gt=0, description="Memory jobs may plan on; default: what the machine has available."
    )
    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible server for the llm policy.")
    llm_model: str = Field(default="gpt-4o-mini", description="Model name sent to that server.")
    llm_max_tokens: int = Field(default=400, ge=16, description="Answer length limit per call.")
    llm_max_attempts: int = Field(default=3, ge=1, description="Invalid answers retried before falling back.")
    llm_fallback_policy: str = Field(default="tpe", description="Used when the LLM cannot give a valid answer.")
    llm_usd_per_1k_tokens: float | None = Field(default=None, ge=0, description="For the cost in llm.consulted.")
    llm_response_format: str = Field(
        default="auto",
        pattern="^(auto|json_schema|json_object_schema|json_object|none)$",
        description="How the answer's JSON schema is sent: OpenAI's json_schema, llama.cpp's json_object+schema; "
        "auto tries them in that order.",
    )
    llm_recorded: Path | None = Field(
        default=None, description="Serve answers from these recorded llm.consulted events (JSON lines); no server."
    )
    torch_threads: int = Field(default=1, ge=1, description="1 is fastest on small shared CPUs (see FACTS).")
    log_format: str = Field(default="json", pattern="^(json|console)$")
    log_level: str = Field(default="info")

    @field_validator("data_dir", "work_dir", "credentials", "auth_dir", "tls_ca", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_file()))

    # Folders under work_dir, named once so every agent agrees on them.
    @property
    def artifacts_dir(self) -> Path:
        return self.work_dir / "artifacts"

    @property
    def models_dir(self) -> Path:
        return self.work_dir / "models"

    @property
    def experiments_dir(self) -> Path:
        return self.work_dir / "experiments"

    @property
    def nats_dir(self) -> Path:
        return self.work_dir / "nats"

    @property
    def cache_dir(self) -> Path:
        return self.work_dir / "cache"

    @property
    def artifact_cache_dir(self) -> Path:
        """Downloaded artifacts, one folder per content hash (a cache: the object store is the record)."""
        return self.work_dir / "cache" / "artifacts"

    @property
    def auth_path(self) -> Path:
        return self.auth_dir or self.work_dir / "auth"

    @property
    def allowed_model_roots(self) -> list[Path]:
        return [self.models_dir, *(r.expanduser().resolve() for r in self.model_roots)]

    def job_timeout(self, kind: str) -> float:
        return self.job_timeout_s.get(kind, self.default_job_timeout_s)

    def available_memory_bytes(self) -> int:
        import psutil

        available = int(psutil.virtual_memory().available)
        if self.memory_limit_mb is not None:
            available = min(available, int(self.memory_limit_mb * 2**20))
        return available

    def llm_configured(self) -> bool:
        """The key itself is read from OPENAI_API_KEY by the client, never stored in settings or events."""
        return bool(self.llm_base_url or os.environ.get("OPENAI_API_KEY"))

    def require_data_dir(self) -> Path:
        if self.data_dir is None:
            raise ConfigError("no benchmark data dir: set GREENAI_DATA_DIR (or --data-dir), e.g. ../shared/data")
        if not self.data_dir.is_dir():
            raise ConfigError(f"benchmark data dir {self.data_dir} does not exist")
        return self.data_dir


class ConfigError(ValueError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI overrides on top; None overrides mean 'not given on the command line'."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)
