"""Typed, frozen configuration: TOML for shape, ``${ENV}`` for secrets, validated once.

``load_settings(path)`` returns a ``Settings`` or raises ``ConfigError`` listing *every* problem,
each naming the file, the key, the bad value (secrets never shown) and the fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
)

from pipeline.connectors import connector_spec, kinds
from pipeline.errors import ConfigError
from pipeline.log import get_logger
from pipeline.redact import redact_url, register_secret

DEFAULT_CONFIG = Path("config/pipeline.toml")
SECRET_KEYS = frozenset({"token", "password", "client_secret", "refresh_token", "access_token", "secret"})
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

log = get_logger(__name__)
_FROZEN = ConfigDict(frozen=True, extra="forbid")

# Every float of the config is finite (TOML allows inf and nan, and either breaks a run: an
# infinite period hangs the limiter, an infinite timeout overflows the event loop's timer).
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Rate(BaseModel):
    """``requests`` per ``per_seconds``: the proactive limiter's budget."""

    model_config = _FROZEN
    requests: PositiveInt
    per_seconds: PositiveFloat

    @property
    def per_second(self) -> float:
        return self.requests / self.per_seconds


class NoAuth(BaseModel):
    model_config = _FROZEN
    kind: Literal["none"] = "none"


class BearerAuth(BaseModel):
    model_config = _FROZEN
    kind: Literal["bearer"]
    token: SecretStr


class OAuthPasswordAuth(BaseModel):
    model_config = _FROZEN
    kind: Literal["oauth_password"]
    username: str
    password: SecretStr
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None


class OAuthClientCredentialsAuth(BaseModel):
    model_config = _FROZEN
    kind: Literal["oauth_client_credentials"]
    client_id: str
    client_secret: SecretStr
    token_url: str | None = None


class ZouJWTAuth(BaseModel):
    model_config = _FROZEN
    kind: Literal["zou_jwt"]
    email: str
    password: SecretStr


Auth = Annotated[
    NoAuth | BearerAuth | OAuthPasswordAuth | OAuthClientCredentialsAuth | ZouJWTAuth,
    Field(discriminator="kind"),
]


# Source keys still accepted but ignored: each loads with a warning saying why and what to do.
DEPRECATED_SOURCE_KEYS = {
    "rate_limit_reset": (
        "is ignored: X-RateLimit-Reset is read by its magnitude (at least 10^9 is a Unix time, "
        "below that seconds from now), whatever this key says; remove the line"
    ),
}


class SourceSettings(BaseModel):
    """One configured source; ``name`` is the ``source`` column everywhere."""

    model_config = _FROZEN

    name: str
    kind: str  # a connector kind (pipeline.connectors.kinds())
    base_url: str
    resources: tuple[str, ...]
    rate: Rate
    max_in_flight: PositiveInt
    page_size: PositiveInt
    enabled: bool = True
    auth: Auth = NoAuth()
    # HTTP engine knobs (pipeline.http): conservative defaults, all overridable.
    timeout_seconds: PositiveFloat = 30.0
    max_attempts: PositiveInt = 6
    backoff_base_seconds: PositiveFloat = 0.5
    backoff_max_seconds: PositiveFloat = 60.0
    max_body_bytes: PositiveInt = 32 * 1024 * 1024
    safety_margin_seconds: NonNegativeFloat = 0.02
    # 429s allowed per rate group within violation_window_seconds (the API's own window; Nekos
    # counts violations over a rolling hour), across every process and run (etl.rate_violations).
    violation_budget: PositiveInt = 5
    violation_window_seconds: PositiveFloat = 3600.0
    # Sources sharing one request budget in etl.rate_groups; default: API host + credential identity.
    rate_group: str | None = Field(default=None, min_length=1, max_length=200)
    # A wait the server asks for (Retry-After, X-RateLimit-Reset, a ban) above this stops the
    # source cleanly (status deferred, exit 1) instead of holding the run.
    max_wait_seconds: PositiveFloat = 300.0
    rate_limit_reserve: int = Field(default=1, ge=0)
    max_pages: PositiveInt | None = None
    # A full re-scan (no change feed) is skipped when the last one completed this recently;
    # 0 = re-scan on every run. `sync --full` always scans.
    min_rescan_minutes: NonNegativeFloat = 0
    # Schema drift (a field path new since the baseline, or an expected one gone): "warn" logs it,
    # "fail" also fails the stream (pipeline.drift).
    on_drift: Literal["warn", "fail"] = "warn"
    # A complete scan whose verified deletes exceed this share of the stream's live rows applies
    # none and fails (`--allow-deletes` on sync/backfill, or raise this, lets them through).
    max_delete_share: float = Field(default=0.05, ge=0, le=1)
    # Connector-specific keys (typed and bounded by the connector's ConnectorSpec.options).
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        try:
            parts = urlsplit(value)
            host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"is not a valid URL ({exc}); write it as https://host[:port]/path") from None
        if not host:
            raise ValueError("has no host; write it as https://host[:port]/path")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment; give the API root only")
        return value.rstrip("/")

    @field_validator("resources")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({r for r in value if value.count(r) > 1})
        if twice:
            raise ValueError(
                f"lists {', '.join(twice)} more than once (each would run twice); list each once"
            )
        if not value:
            raise ValueError("is empty; list at least one resource, or set enabled = false")
        return value

    @field_validator("backoff_max_seconds")
    @classmethod
    def _backoff_order(cls, value: float, info: Any) -> float:
        base = info.data.get("backoff_base_seconds")
        if isinstance(base, float | int) and value < base:
            raise ValueError(f"is below backoff_base_seconds ({base}); raise it or lower the base")
        return value

    def __repr__(self) -> str:
        return f"SourceSettings(name={self.name!r}, kind={self.kind!r}, base_url={self.base_url!r})"


class PipelineSettings(BaseModel):
    """Run-wide knobs: batching, backpressure, rejects, checkpoint lag."""

    model_config = _FROZEN
    batch_rows: PositiveInt = 5000
    # Page bytes per load transaction. Parsed, a page holds several times its bytes in Python
    # objects, and a slow database lets two batches fill to this bound (one loading, one pending):
    # 8 MiB measured 225 MB peak RSS on a 100k Kitsu sync, 4 MiB 165 MB (target 200).
    batch_bytes: PositiveInt = 4 * 1024 * 1024
    queue_pages: PositiveInt = 8
    batch_min_rows: PositiveInt = 500  # handed to the loader early once this many are pending
    # the longest a fetched page waits for its commit
    flush_seconds: float = Field(default=2.0, gt=0, allow_inf_nan=False)
    max_reject_share: float = Field(default=0.05, ge=0, le=1, allow_inf_nan=False)
    cursor_lag_seconds: int = Field(default=300, ge=0)
    # Deadlines (0 = none): a stream or run past them stops fetching cleanly (status deferred).
    # Another run finding a stream held by a run past its deadline reports it as stuck.
    max_run_minutes: NonNegativeFloat = 720.0
    max_stream_minutes: NonNegativeFloat = 0.0
    # Orchestrator (pipeline.dagster): nightly sync schedule, freshness check, first backfill window.
    schedule: str = "0 3 * * *"
    max_lag_hours: PositiveFloat = 26.0
    backfill_start: date = date(2013, 1, 1)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("must be a cron expression of five fields, e.g. '0 3 * * *' (03:00 UTC daily)")
        return value


class DatabaseSettings(BaseModel):
    model_config = _FROZEN
    url: SecretStr | None = None

    def __repr__(self) -> str:
        shown = redact_url(self.url.get_secret_value()) if self.url else None
        return f"DatabaseSettings(url={shown!r})"


class Settings(BaseModel):
    model_config = _FROZEN
    path: Path | None = None
    database: DatabaseSettings = DatabaseSettings()
    pipeline: PipelineSettings = PipelineSettings()
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    # Accepted but questionable lines of the file (deprecated keys), each naming the place and fix.
    warnings: tuple[str, ...] = ()

    def enabled_sources(self) -> list[SourceSettings]:
        return [s for s in self.sources.values() if s.enabled]

    def database_url(self) -> str | None:
        """``DATABASE_URL`` wins over ``[database] url``; ``None`` means the embedded server."""
        env = os.environ.get("DATABASE_URL")
        if env:
            return env
        return self.database.url.get_secret_value() if self.database.url else None


def config_path(cli_path: str | os.PathLike[str] | None = None) -> Path:
    """``--config`` wins, then ``PIPELINE_CONFIG``, then ``config/pipeline.toml``."""
    if cli_path:
        return Path(cli_path)
    env = os.environ.get("PIPELINE_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, interpolate and validate one TOML file; raise ``ConfigError`` with every problem."""
    file = config_path(path)
    environ = os.environ if env is None else env
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{file}: config file not found; pass --config PATH, set PIPELINE_CONFIG, "
            f"or copy config/pipeline.toml"
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc}); fix the syntax at that line") from None
    settings = parse_settings(raw, file, environ)
    for warning in settings.warnings:
        log.warning("config_warning", detail=warning)
    return settings


def parse_settings(raw: dict[str, Any], file: Path, environ: Mapping[str, str]) -> Settings:
    problems: list[str] = []
    # A disabled source may name variables that are not set on this machine: only enabled
    # sources (and the rest of the file) must resolve every ${VAR}.
    lenient: list[str] = []
    data = {
        key: (
            {
                name: _interpolate(
                    body,
                    file,
                    environ,
                    (key, name),
                    problems if not (isinstance(body, dict) and body.get("enabled") is False) else lenient,
                )
                for name, body in value.items()
            }
            if key == "sources" and isinstance(value, dict)
            else _interpolate(value, file, environ, (key,), problems)
        )
        for key, value in raw.items()
    }
    # Secrets are registered before validation, so even a config error cannot print one.
    register_config_secrets(data, environ)
    top_known = {"database", "pipeline", "sources"}
    for key in data:
        if key not in top_known:
            problems.append(f"{file}: unknown top-level key '{key}'; known: {', '.join(sorted(top_known))}")
    sources_raw = data.get("sources", {})
    if not isinstance(sources_raw, dict):
        problems.append(f"{file}: 'sources' must be a table of [sources.NAME] tables")
        sources_raw = {}
    sources: dict[str, Any] = {}
    warnings: list[str] = []
    for name, body in sources_raw.items():
        built = _source_dict(name, body, file, problems, warnings)
        if built is not None:
            sources[name] = built
    candidate = {
        "path": file,
        "database": data.get("database", {}),
        "pipeline": data.get("pipeline", {}),
        "sources": sources,
        "warnings": tuple(warnings),
    }
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(candidate)
    except ValidationError as exc:
        problems.extend(_describe(exc, file, candidate))
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings


_USER_KEYS = ("username", "client_id", "email")


def register_config_secrets(data: Any, environ: Mapping[str, str]) -> None:
    """Register every secret value of an (interpolated) config with ``pipeline.redact``.

    Values under secret-named keys (``password``, ``token``, ``client_secret`` …, paired with the
    table's ``username``/``client_id``/``email`` for basic-auth forms), every string inside an
    ``auth`` value that is not a table of the expected shape, and the passwords of the database
    URLs (``[database] url`` and ``DATABASE_URL``).
    """

    def walk(value: Any, key: str | None) -> None:
        if isinstance(value, dict):
            user = next((value[k] for k in _USER_KEYS if isinstance(value.get(k), str)), None)
            for k, v in value.items():
                if k in SECRET_KEYS and isinstance(v, str):
                    register_secret(v, user=user)
                elif k == "auth" and not isinstance(v, dict):
                    for text in _strings(v):  # a wrongly typed auth value may be the secret itself
                        register_secret(text)
                else:
                    walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)

    walk(data, None)
    database = data.get("database") if isinstance(data, dict) else None
    urls = [database.get("url") if isinstance(database, dict) else None, environ.get("DATABASE_URL")]
    for url in urls:
        if isinstance(url, str):
            register_url_password(url)


def register_url_password(url: str) -> None:
    """Register the password of a URL's userinfo (as written and percent-decoded)."""
    from urllib.parse import unquote

    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return
    if password:
        register_secret(password, user=unquote(user or ""))
        register_secret(unquote(password), user=unquote(user or ""))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _source_dict(
    name: str, body: Any, file: Path, problems: list[str], warnings: list[str]
) -> dict[str, Any] | None:
    where = f"{file}: [sources.{name}]"
    if not isinstance(body, dict):
        problems.append(f"{where} must be a table")
        return None
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
        problems.append(
            f"{where}: source name must be lower-case letters, digits and _ (it becomes a column value)"
        )
    kind = body.get("kind")
    known_kinds = kinds()
    if not isinstance(kind, str) or kind not in known_kinds:
        problems.append(
            f"{where}.kind = {kind!r}: unknown kind; use one of {', '.join(known_kinds)}"
            if kind is not None
            else f"{where}: missing 'kind'; use one of {', '.join(known_kinds)}"
        )
        return None
    spec = connector_spec(kind)
    merged: dict[str, Any] = {"name": name, **spec.defaults}
    common = set(SourceSettings.model_fields) - {"name", "options"}
    allowed_options = spec.options
    options: dict[str, Any] = {}
    for key, value in body.items():
        if key in DEPRECATED_SOURCE_KEYS:
            warnings.append(f"{where}.{key} = {value!r} {DEPRECATED_SOURCE_KEYS[key]}")
        elif key in common:
            merged[key] = value
        elif key in allowed_options:
            expected = allowed_options[key]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                problems.append(f"{where}.{key} = {value!r}: wrong type; expected {_type_name(expected)}")
            elif (why := spec.option_problem(key, value)) is not None:
                problems.append(f"{where}.{key} = {value!r}: {why}")
            options[key] = value
        else:
            known = sorted(common | set(allowed_options))
            problems.append(f"{where}: unknown key '{key}' for kind '{kind}'; known keys: {', '.join(known)}")
    merged["options"] = options
    if "base_url" not in body:
        problems.append(f"{where}: missing 'base_url'; set the API's root URL, e.g. base_url = \"https://…\"")
    resources = body.get("resources", list(spec.resources))
    if isinstance(resources, list):
        bad = [r for r in resources if r not in spec.resources]
        if bad:
            problems.append(
                f"{where}.resources: unknown resource(s) {bad} for kind '{kind}'; "
                f"use some of {', '.join(spec.resources)}"
            )
        merged["resources"] = tuple(r for r in resources if r in spec.resources)
        if bad and not merged["resources"]:
            merged["resources"] = spec.resources  # reported above; do not add "is empty" to it
    page_size = merged.get("page_size")
    if isinstance(page_size, int) and page_size > spec.max_page_size:
        problems.append(
            f"{where}.page_size = {page_size}: above the API's maximum {spec.max_page_size}; lower it"
        )
    return merged


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return expected.__name__


def _interpolate(
    value: Any, file: Path, environ: Mapping[str, str], keys: tuple[str, ...], problems: list[str]
) -> Any:
    """Replace ``${VAR}`` in every string; a missing variable is a problem naming it and its key."""
    if isinstance(value, dict):
        return {k: _interpolate(v, file, environ, (*keys, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, file, environ, keys, problems) for v in value]
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in environ:
                problems.append(
                    f"{file}: {'.'.join(keys)} refers to environment variable ${{{var}}}, which is not set; "
                    f"export {var}=… before running"
                )
                return ""
            return environ[var]

        return _ENV_REF.sub(sub, value)
    return value


def _describe(exc: ValidationError, file: Path, candidate: dict[str, Any]) -> list[str]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if loc[:1] == ["sources"] and len(loc) >= 2:
            key = f"[sources.{loc[1]}]" + ("." + ".".join(loc[2:]) if len(loc) > 2 else "")
        else:
            key = ".".join(loc)
        leaf = loc[-1] if loc else ""
        # Never echo secrets (nor anything inside an auth or database table, which may hold one
        # under a misspelt key); values of other keys help the reader find the line.
        given = err.get("input")
        if leaf in SECRET_KEYS or "auth" in loc or loc[:1] == ["database"]:
            value = f"<{type(given).__name__}, not shown>"
        else:
            value = repr(given)
        if err["type"] == "missing":
            out.append(f"{file}: {key}: missing required key; add it")
        elif err["type"] == "extra_forbidden":
            out.append(f"{file}: {key}: unknown key; remove it or check its spelling")
        else:
            message = err["msg"].removeprefix("Value error, ")
            fix = _FIXES.get(err["type"], "fix the value")
            out.append(f"{file}: {key} = {value}: {message}" + (f"; {fix}" if fix else ""))
    return out


_FIXES = {
    "finite_number": "use a finite number (inf and nan are not allowed)",
    "greater_than": "use a number above 0",
    "greater_than_equal": "use 0 or more",
    "value_error": "",  # our validators' messages end with their fix
}
