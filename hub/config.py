"""Settings, read from the environment with the ``HUB_`` prefix."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class ConfigError(Exception):
    """A setting is invalid; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", allow_inf_nan=False)

    data_dir: Path = Field(Path(".hub"), description="Where the embedded database and secret key live.")
    database_url: str = Field("", description="SQLAlchemy async URL; default: SQLite in the data dir.")
    database_password: str = Field(
        "", description="Password for HUB_DATABASE_URL, kept out of the URL: any character works (hub quotes it)."
    )
    redis_url: str = Field("", description="redis://… enables scaled mode (arq workers); empty = embedded.")
    redis_password: str = Field("", description="Password for HUB_REDIS_URL, kept out of the URL (any character).")
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
    delivery_process: bool = Field(
        True,
        description="`hub serve` delivers in a second process of its own (a second core); off: in the API process.",
    )
    worker_concurrency: int = Field(64, gt=0, le=1000, description="Deliveries sent at once per worker.")
    delivery_timeout: float = Field(15.0, gt=0, description="Seconds before an outbound request times out.")
    render_processes: int = Field(
        2,
        ge=0,
        le=64,
        description="Processes that render mappings, away from the event loop (0: on the loop, no isolation).",
    )
    render_deadline: float = Field(
        2.0, gt=0, le=60, description="Seconds one delivery's mapping may render before its process is killed."
    )
    render_memory_mb: int = Field(1024, ge=0, description="Address-space limit of a render process in MiB (0: none).")
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
    storage_interval: float = Field(
        30.0,
        gt=0,
        description="Seconds between the worker's storage passes: due fetches of Dropbox / Graph / Drive changes, "
        "provider subscriptions created and renewed.",
    )
    storage_resync_interval: float = Field(
        3600.0,
        ge=0,
        description="Seconds after which a source that fetches changes is fetched even without a notification "
        "(a lost notification is caught up); 0 = only on notifications.",
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="`hub worker`: serve /metrics on this port (0 = off).")
    log_level: str = Field("INFO", description="Python logging level.")
    log_json: bool = Field(True, description="Structured JSON logs.")
    oidc_issuer: str = Field("", description="OpenID Connect issuer URL; empty = no single sign-on.")
    oidc_client_id: str = Field("", description="hub's client id at the identity provider (console sign-in).")
    oidc_client_secret: str = Field("", description="Its client secret (empty for a public client: PKCE only).")
    oidc_audience: str = Field("", description="Expected `aud` of API bearer tokens; default: the client id.")
    oidc_admin_groups: str = Field("", description="Comma-separated groups (or roles) given the admin scope.")
    oidc_read_groups: str = Field("", description="Comma-separated groups (or roles) given the read scope.")
    oidc_groups_claim: str = Field(
        "groups", description="Claim holding the groups; a dotted path reaches nested ones (realm_access.roles)."
    )
    oidc_scopes: str = Field("openid email profile", description="Scopes asked for at sign-in.")
    session_lifetime: float = Field(
        8 * 3600.0, gt=0, le=30 * 86400, description="Seconds a console sign-in lasts (signed cookie)."
    )
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

    @field_validator("oidc_issuer")
    @classmethod
    def _check_issuer(cls, v: str) -> str:
        if not v:
            return v
        url = urlsplit(v)
        loopback = url.hostname in ("127.0.0.1", "localhost", "::1")
        if not url.hostname or not (url.scheme == "https" or (url.scheme == "http" and loopback)):
            raise ValueError("must be an https:// URL (http:// only on this machine's loopback)")
        return v.rstrip("/")

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
        if self.database_url and self.database_password:
            url = make_url(self.database_url).set(password=self.database_password)
            return url.render_as_string(hide_password=False)  # quoted: @ : / # and the rest survive
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hub.db').resolve()}"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @staticmethod
    def names(listed: str) -> frozenset[str]:
        """A comma-separated setting as a set of names."""
        return frozenset(part.strip() for part in listed.split(",") if part.strip())

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
    if settings.oidc_enabled and not (settings.oidc_client_id or settings.oidc_audience):
        raise ConfigError(
            "invalid configuration: HUB_OIDC_CLIENT_ID: required with HUB_OIDC_ISSUER "
            "(or HUB_OIDC_AUDIENCE for API bearer tokens only)"
        )
    if settings.oidc_enabled and not (
        settings.names(settings.oidc_admin_groups) | settings.names(settings.oidc_read_groups)
    ):
        logging.getLogger("hub.config").warning(
            "HUB_OIDC_ADMIN_GROUPS and HUB_OIDC_READ_GROUPS are empty: nobody signing in through OIDC gets access"
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
