"""Settings, read from the environment with the ``HUB_`` prefix."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """A setting is invalid; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", allow_inf_nan=False)

    data_dir: Path = Field(Path(".hub"), description="Where the embedded database and secret key live.")
    database_url: str = Field("", description="SQLAlchemy async URL; default: SQLite in the data dir.")
    redis_url: str = Field("", description="redis://… enables scaled mode (arq workers); empty = embedded.")
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Largest accepted webhook body.")
    max_api_body_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest management API request body (413 body_too_large above)."
    )
    header_timeout: float = Field(
        10.0, gt=0, description="`hub serve`: seconds a client has to send a request's headers; then 408 and closed."
    )
    min_body_rate: float = Field(
        1024.0,
        ge=0,
        description="`hub serve`: bytes/s a request body must average once HUB_BODY_RATE_GRACE has passed; "
        "slower gets 408 and the connection closed (0 = no minimum).",
    )
    body_rate_grace: float = Field(
        10.0, ge=0, description="`hub serve`: seconds of a request body before HUB_MIN_BODY_RATE applies."
    )
    secret_key: str = Field(
        "",
        description="Key that encrypts secrets at rest; generated in the data dir on the embedded default when empty.",
    )
    bootstrap_admin_key: str = Field("", description="Creates this admin API key when no key exists yet.")
    public_url: str = Field("", description="Base URL used to build ingest URLs, e.g. https://hub.example.com")
    auto_migrate: bool = Field(True, description="Apply database migrations when `hub serve` starts.")
    embedded_worker: bool = Field(
        True, description="Run the delivery worker inside `hub serve` (always off in scaled mode)."
    )
    worker_concurrency: int = Field(32, gt=0, le=1000, description="Deliveries sent at once per worker.")
    delivery_timeout: float = Field(15.0, gt=0, description="Seconds before an outbound request times out.")
    delivery_lease: float = Field(
        60.0,
        gt=0,
        description="Seconds a claimed delivery stays reserved "
        "before another worker may take it over (crash recovery).",
    )
    poll_interval: float = Field(1.0, gt=0, description="Longest wait between two looks for due deliveries.")
    breaker_threshold: int = Field(5, gt=0, description="Consecutive failed sends that open a target's breaker.")
    breaker_cooldown: float = Field(30.0, gt=0, description="Seconds an open breaker waits before a probe.")
    breaker_disable_after: float = Field(
        5 * 24 * 3600.0, gt=0, description="Seconds a breaker may stay open before the target is disabled."
    )
    sweep_interval: float = Field(0.25, gt=0, description="Scaled mode: seconds between looks for due work.")
    block_private_targets: bool = Field(
        False,
        description="Refuse target addresses that are not globally routable (loopback, private, CGNAT…); "
        "link-local (cloud metadata) is always refused.",
    )
    retention_days: float = Field(
        30.0,
        ge=0,
        description="Days a finished event (every delivery delivered or skipped) is kept, with its attempts; "
        "0 = for ever. Pending work and dead letters are never purged.",
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="`hub worker`: serve /metrics on this port (0 = off).")
    log_level: str = Field("INFO", description="Python logging level.")
    log_json: bool = Field(True, description="Structured JSON logs.")
    connectors_dir: Path | None = Field(None, description="Extra directory of connector specs.")
    mappings_dir: Path | None = Field(None, description="Extra directory of mapping files.")

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, v: str) -> str:
        if v and not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: str) -> str:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @field_validator("connectors_dir", "mappings_dir")
    @classmethod
    def _check_dir(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_dir():
            raise ValueError(f"{v} is not a directory")
        return v

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, v: str) -> str:
        if v.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return v.upper()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hub.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def scaled(self) -> bool:
        return bool(self.redis_url)


def load_settings() -> Settings:
    """Read settings, turning a validation error into a message naming each bad ``HUB_`` variable."""
    try:
        settings = Settings()
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            name = "HUB_" + "_".join(str(p) for p in err["loc"]).upper()
            parts.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(parts)) from None
    check_consistency(settings)
    return settings


def check_consistency(settings: Settings) -> None:
    """What no single setting shows: combinations that could not work, and an unusable data dir."""
    if settings.scaled and settings.is_sqlite:
        raise ConfigError(
            "invalid configuration: HUB_DATABASE_URL: scaled mode (HUB_REDIS_URL is set) needs a shared "
            "postgresql+asyncpg:// database; unset HUB_REDIS_URL for the embedded default"
        )
    if settings.delivery_lease <= settings.delivery_timeout + 1:
        logging.getLogger("hub.config").warning(
            "HUB_DELIVERY_LEASE should exceed HUB_DELIVERY_TIMEOUT by more than a second: "
            "a slow send could outlive its lease and be sent twice"
        )
    if settings.is_sqlite:
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            probe = settings.data_dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"invalid configuration: HUB_DATA_DIR: {settings.data_dir}: {exc.strerror}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
