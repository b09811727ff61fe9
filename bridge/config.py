"""The config file (`bridge.toml`): loading, validation and where to find it.

Validation collects every problem before failing, each as `file:key: what is wrong`, so one
edit-and-retry fixes them all. Unknown keys are errors because a typo such as `max_purge_per_run`
would otherwise silently fall back to a default that may purge more than intended.

Secrets are never in the file: it names environment variables (`*_env`) or files (`*_file`), and
`load_config` does not read them, so `bridge status` works without credentials.
`check_secrets` is the separate step that does.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bridge.core.decide import ConflictPolicy, Direction
from bridge.errors import BridgeError
from bridge.secrets import Secret

__all__ = [
    "CONFLICT_POLICIES",
    "DEFAULT_CONFIG_NAME",
    "DIRECTIONS",
    "ENV_CONFIG",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "SUPEROFFICE_AUTH_MODES",
    "ZENDESK_AUTH_MODES",
    "Config",
    "ConfigError",
    "LinkSettings",
    "LoggingSettings",
    "SuperOfficeSettings",
    "SyncSettings",
    "ZendeskSettings",
    "check_secrets",
    "example_config_text",
    "load_config",
    "resolve_config_path",
]

ENV_CONFIG: Final = "BRIDGE_CONFIG"
DEFAULT_CONFIG_NAME: Final = "bridge.toml"

LOG_FORMATS: Final = ("auto", "json", "console")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
ZENDESK_AUTH_MODES: Final = ("api_token", "oauth")
SUPEROFFICE_AUTH_MODES: Final = ("soticket", "bearer", "basic", "system_user")
DIRECTIONS: Final = tuple(d.value for d in Direction)
CONFLICT_POLICIES: Final = tuple(p.value for p in ConflictPolicy)

# secrets (by base name) and plain keys that only some SuperOffice auth modes use
_SO_SECRETS_BY_MODE: Final[dict[str, tuple[str, ...]]] = {
    "soticket": ("ticket", "app_token"),
    "bearer": ("bearer", "app_token"),
    "basic": ("password",),
    "system_user": ("system_user_token", "private_key", "app_token"),
}
# with a bearer token SO-AppToken is not documented as required, but may be sent
_SO_OPTIONAL_SECRETS: Final[dict[str, tuple[str, ...]]] = {"bearer": ("app_token",)}
_SO_PLAIN_BY_MODE: Final[dict[str, tuple[str, ...]]] = {
    "basic": ("username",),
    "system_user": ("login_url", "public_key_file"),
}
_SECRET_BASES: Final = frozenset(
    {"token", "ticket", "app_token", "bearer", "password", "system_user_token", "private_key"}
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(BridgeError):
    """The config is unusable; `problems` holds one `file:key: what is wrong` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    format: str = "auto"
    level: str = "info"


@dataclass(frozen=True, slots=True)
class ZendeskSettings:
    base_url: str
    auth: str
    email: str | None
    token: Secret
    timeout_seconds: float = 30.0
    job_limit: int = 30
    bridge_user_id: int | None = None
    outcome_wait_seconds: int = 900

    def secrets(self) -> dict[str, Secret]:
        """Secrets this auth mode uses, by base key name (`token` for `token_env`/`token_file`)."""
        return {"token": self.token}


@dataclass(frozen=True, slots=True)
class SuperOfficeSettings:
    base_url: str
    tenant: str
    auth: str
    ticket: Secret | None = None
    app_token: Secret | None = None
    bearer: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    system_user_token: Secret | None = None
    private_key: Secret | None = None
    login_url: str | None = None
    public_key_file: Path | None = None
    retention_days: int = 14
    requests_per_second: float = 10.0
    timeout_seconds: float = 30.0
    bridge_associate_id: int | None = None

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v1"

    def secrets(self) -> dict[str, Secret]:
        """Secrets this auth mode uses, by base key name."""
        found = {base: getattr(self, base) for base in _SO_SECRETS_BY_MODE.get(self.auth, ())}
        return {base: s for base, s in found.items() if s is not None}


@dataclass(frozen=True, slots=True)
class SyncSettings:
    direction: Direction = Direction.BOTH
    conflict_policy: ConflictPolicy = ConflictPolicy.MANUAL
    propagate_purges: bool = True
    propagate_retention_purges: bool = False
    max_purges_per_run: int = 100
    lease_seconds: int = 900
    attention_after_minutes: int = 60
    sweep_period_hours: int = 24
    sweep_max_per_run: int = 10_000


@dataclass(frozen=True, slots=True)
class LinkSettings:
    external_id_pattern: str = "superoffice-{id}"
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefix, _, suffix = self.external_id_pattern.partition("{id}")
        regex = re.compile(re.escape(prefix) + r"([1-9][0-9]*)" + re.escape(suffix))
        object.__setattr__(self, "_regex", regex)

    def format_external_id(self, superoffice_id: int) -> str:
        return self.external_id_pattern.replace("{id}", str(superoffice_id))

    def parse_external_id(self, external_id: str | None) -> int | None:
        """The SuperOffice id an external_id names, or None when it does not fit the pattern."""
        if not external_id:
            return None
        match = self._regex.fullmatch(external_id)
        return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    ledger_url: str
    logging: LoggingSettings
    zendesk: ZendeskSettings
    superoffice: SuperOfficeSettings
    sync: SyncSettings
    links: LinkSettings

    def section(self, name: str) -> ZendeskSettings | SuperOfficeSettings:
        """A vendor's parsed section by its name in the file (`zendesk` for `[zendesk]`):
        the factory finds each registered vendor's settings with it."""
        sections: dict[str, ZendeskSettings | SuperOfficeSettings] = {
            "zendesk": self.zendesk,
            "superoffice": self.superoffice,
        }
        if name not in sections:
            raise KeyError(f"no vendor section [{name}] in the config")
        return sections[name]


# --- reading ----------------------------------------------------------------------------------

_MISSING: Final = object()


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return "a date/time"


def _suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""


class _Problems:
    def __init__(self, label: str) -> None:
        self.label = label
        self.lines: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.lines.append(f"{self.label}:{key}: {message}" if key else f"{self.label}: {message}")


class _Table:
    """One TOML table: typed getters that record problems and the keys they consumed."""

    def __init__(self, problems: _Problems, name: str, data: Mapping[str, Any], folder: Path):
        self.problems = problems
        self.name = name
        self.data = data
        self.folder = folder
        self.known: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def bad(self, key: str, message: str) -> None:
        self.problems.add(self.key(key), message)

    def raw(self, key: str) -> Any:
        self.known.add(key)
        return self.data.get(key, _MISSING)

    def present(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw(key)
        if value is _MISSING:
            if default is _MISSING:
                self.bad(key, "missing (required)")
                return None
            return default
        if not isinstance(value, str):
            self.bad(key, f"must be a string, not {_type_name(value)}")
            return None
        if not value.strip():
            self.bad(key, "must not be empty")
            return None
        return value.strip()

    def choice(self, key: str, options: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self.text(key, default)
        if value is None or value is default:
            return value
        if value not in options:
            listed = ", ".join(f'"{o}"' for o in options)
            self.bad(key, f'must be one of {listed}, not "{value}"{_suggest(value, options)}')
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.bad(key, f"must be true or false, not {_type_name(value)}")
            return default
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int = 2**31 - 1) -> int:
        value = self.raw(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                self.bad(key, "must be a whole number without a decimal point")
            else:
                self.bad(key, f"must be a whole number, not {_type_name(value)}")
            return default
        if value < minimum:
            self.bad(key, "must not be negative" if minimum == 0 else f"must be at least {minimum}")
            return default
        if value > maximum:
            self.bad(key, f"must be at most {maximum:,} (is {value:,})")
            return default
        return value

    def positive_number(self, key: str, default: float, maximum: float = 1e6) -> float:
        value = self.raw(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.bad(key, f"must be a number, not {_type_name(value)}")
            return default
        if not math.isfinite(value) or value <= 0:
            self.bad(key, "must be a number greater than 0")
            return default
        if value > maximum:
            self.bad(key, f"must be at most {maximum:g} (is {value:g})")
            return default
        return float(value)

    def url(self, key: str, default: Any = _MISSING, *, forbidden_tail: str = "") -> Any:
        value = self.text(key, default)
        if value is None or value is default:
            return value
        message = _url_problem(value, forbidden_tail)
        if message:
            self.bad(key, message)
            return None
        return str(value).rstrip("/")

    def path(self, key: str) -> Path | None:
        value = self.text(key, None)
        return None if value is None else self.folder / Path(value).expanduser()

    def secret(self, base: str, *, required: bool) -> Secret | None:
        """`base_env` xor `base_file`: a Secret naming where the value lives."""
        env_key, file_key = f"{base}_env", f"{base}_file"
        has_env, has_file = self.present(env_key), self.present(file_key)
        self.known.update((env_key, file_key))
        if has_env and has_file:
            self.bad(env_key, f"give either {env_key} or {file_key}, not both")
            return None
        if not has_env and not has_file:
            if required:
                self.bad(env_key, f"missing (required): set {env_key} or {file_key}")
            return None
        if has_env:
            name = self.data[env_key]
            if not isinstance(name, str):
                self.bad(env_key, f"must be a string, not {_type_name(name)}")
                return None
            if not _ENV_NAME.match(name):
                # do not echo it: a pasted token in place of a variable name is a likely mistake
                self.bad(
                    env_key,
                    "must be the name of an environment variable (letters, digits, _), "
                    "not the secret itself",
                )
                return None
            return Secret.from_env(name)
        where = self.path(file_key)
        return None if where is None else Secret.from_file(where)

    def reject_unknown(self, hints: Mapping[str, str] | None = None) -> None:
        for key in self.data:
            if key in self.known:
                continue
            if hints and key in hints:
                self.bad(key, hints[key])
            elif key in _SECRET_BASES and f"{key}_env" in self.known:
                self.bad(
                    key,
                    f"unknown key: secrets are never written in the config; "
                    f"name them with {key}_env or {key}_file",
                )
            else:
                self.bad(key, "unknown key" + _suggest(key, sorted(self.known)))


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _url_problem(value: str, forbidden_tail: str) -> str | None:
    if any(c.isspace() for c in value):
        return "must be a URL without spaces"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        shown = f'"{parts.scheme}"' if parts.scheme else "none"
        return f"must be an http or https URL (scheme is {shown})"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials (name secrets with *_env or *_file keys)"
    if not parts.hostname:
        return "must name a host"
    if parts.scheme.lower() == "http" and parts.hostname.lower() not in _LOOPBACK:
        return "must be https (plain http is only for 127.0.0.1, ::1 or localhost)"
    if parts.query or parts.fragment:
        return "must not have a query string or fragment"
    if forbidden_tail and parts.path.rstrip("/").lower().endswith(forbidden_tail):
        return f"must not end with {forbidden_tail} (bridge adds it)"
    del port
    return None


def _ledger_url(table: _Table) -> str:
    value = table.text("url", None)
    folder = table.folder
    if value is None:
        default = URL.create("sqlite", database=str(folder / "bridge.db"))
        return default.render_as_string(hide_password=False)
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        table.bad("url", "is not a valid SQLAlchemy database URL (e.g. sqlite:///bridge.db)")
        return ""
    if url.password:
        table.bad(
            "url",
            "must not contain a password; use the database driver's own mechanism "
            "(e.g. PGPASSWORD or ~/.pgpass)",
        )
        return ""
    if url.get_backend_name() == "sqlite":
        db = url.database
        if db and db != ":memory:" and not db.startswith("file:"):
            path = Path(db).expanduser()
            if not path.is_absolute():
                return url.set(database=str(folder / path)).render_as_string(hide_password=False)
    return str(value)


def _read_logging(table: _Table) -> LoggingSettings:
    fmt = table.choice("format", LOG_FORMATS, "auto")
    level_raw = table.text("level", "info")
    level = level_raw.lower() if isinstance(level_raw, str) else "info"
    if isinstance(level_raw, str) and level not in LOG_LEVELS:
        listed = ", ".join(f'"{o}"' for o in LOG_LEVELS)
        table.bad("level", f'must be one of {listed}, not "{level_raw}"')
        level = "info"
    table.reject_unknown()
    return LoggingSettings(format=fmt or "auto", level=level)


def _read_zendesk(table: _Table) -> ZendeskSettings | None:
    base_url = table.url("base_url", forbidden_tail="/api/v2")
    auth = table.choice("auth", ZENDESK_AUTH_MODES, "api_token")
    email = table.text("email", None)
    if auth == "api_token" and email is None and not table.present("email"):
        table.bad("email", 'missing (required with auth = "api_token")')
    if auth == "oauth" and table.present("email"):
        table.bad("email", 'only used with auth = "api_token"')
    if isinstance(email, str) and "@" not in email:
        table.bad("email", "must be an email address")
    token = table.secret("token", required=True)
    timeout = table.positive_number("timeout_seconds", 30.0, maximum=600)
    job_limit = table.integer("job_limit", 30, minimum=1)
    user_id = table.integer("bridge_user_id", 0, minimum=0, maximum=2**63 - 1)
    outcome_wait = table.integer("outcome_wait_seconds", 900, minimum=1, maximum=86_400)
    table.reject_unknown()
    if base_url is None or auth is None or token is None:
        return None
    return ZendeskSettings(
        base_url=base_url,
        auth=auth,
        email=email if auth == "api_token" else None,
        token=token,
        timeout_seconds=timeout,
        job_limit=job_limit,
        bridge_user_id=user_id or None,
        outcome_wait_seconds=outcome_wait,
    )


def _read_superoffice(table: _Table) -> SuperOfficeSettings | None:
    base_url = table.url("base_url", forbidden_tail="/api/v1")
    tenant = table.text("tenant")
    if isinstance(tenant, str) and not re.fullmatch(r"[A-Za-z0-9_.-]+", tenant):
        table.bad("tenant", "must be a tenant id such as Cust12345 (letters, digits, _ . -)")
        tenant = None
    auth = table.choice("auth", SUPEROFFICE_AUTH_MODES, "soticket")

    secrets: dict[str, Secret | None] = {}
    plain: dict[str, Any] = {}
    if auth in _SO_SECRETS_BY_MODE:
        optional = _SO_OPTIONAL_SECRETS.get(auth, ())
        for base in _SO_SECRETS_BY_MODE[auth]:
            secret = table.secret(base, required=base not in optional)
            if secret is not None or base not in optional:
                secrets[base] = secret
        if auth == "basic":
            plain["username"] = table.text("username")
        if auth == "system_user":
            plain["login_url"] = table.url("login_url", None)
            if (
                plain["login_url"] is None
                and base_url is not None
                and not table.present("login_url")
            ):
                parts = urlsplit(base_url)
                plain["login_url"] = f"{parts.scheme}://{parts.netloc}/Login"
            plain["public_key_file"] = table.path("public_key_file")
        # keys of the other modes are mistakes (or leftovers that hide which mode is in use)
        used = {k for b in _SO_SECRETS_BY_MODE[auth] for k in (f"{b}_env", f"{b}_file")}
        used.update(_SO_PLAIN_BY_MODE.get(auth, ()))
        for mode in SUPEROFFICE_AUTH_MODES:
            mode_keys = [k for b in _SO_SECRETS_BY_MODE[mode] for k in (f"{b}_env", f"{b}_file")]
            mode_keys += _SO_PLAIN_BY_MODE.get(mode, ())
            for key in mode_keys:
                if key in used or key in table.known:
                    continue
                table.known.add(key)
                if table.present(key):
                    owners = [
                        m
                        for m in SUPEROFFICE_AUTH_MODES
                        if key.rsplit("_", 1)[0] in _SO_SECRETS_BY_MODE[m]
                        or key in _SO_PLAIN_BY_MODE.get(m, ())
                    ]
                    listed = " or ".join(f'"{m}"' for m in owners)
                    table.bad(key, f'only used with auth = {listed} (auth is "{auth}")')
    else:  # auth invalid: do not pile unknown-key noise on top
        for mode in SUPEROFFICE_AUTH_MODES:
            for base in _SO_SECRETS_BY_MODE[mode]:
                table.known.update((f"{base}_env", f"{base}_file"))
            table.known.update(_SO_PLAIN_BY_MODE.get(mode, ()))

    retention = table.integer("retention_days", 14, minimum=0, maximum=3_650)
    rps = table.positive_number("requests_per_second", 10.0, maximum=10_000)
    timeout = table.positive_number("timeout_seconds", 30.0, maximum=600)
    associate = table.integer("bridge_associate_id", 0, minimum=0)
    table.reject_unknown()
    if (
        base_url is None
        or tenant is None
        or auth is None
        or any(s is None for s in secrets.values())
        or (auth == "basic" and plain.get("username") is None)
    ):
        return None
    return SuperOfficeSettings(
        base_url=base_url,
        tenant=tenant,
        auth=auth,
        ticket=secrets.get("ticket"),
        app_token=secrets.get("app_token"),
        bearer=secrets.get("bearer"),
        username=plain.get("username"),
        password=secrets.get("password"),
        system_user_token=secrets.get("system_user_token"),
        private_key=secrets.get("private_key"),
        login_url=plain.get("login_url"),
        public_key_file=plain.get("public_key_file"),
        retention_days=retention,
        requests_per_second=rps,
        timeout_seconds=timeout,
        bridge_associate_id=associate or None,
    )


def _read_sync(table: _Table) -> SyncSettings:
    settings = SyncSettings(
        direction=Direction(table.choice("direction", DIRECTIONS, "both") or "both"),
        conflict_policy=ConflictPolicy(
            table.choice("conflict_policy", CONFLICT_POLICIES, "manual") or "manual"
        ),
        propagate_purges=table.boolean("propagate_purges", True),
        propagate_retention_purges=table.boolean("propagate_retention_purges", False),
        max_purges_per_run=table.integer("max_purges_per_run", 100, minimum=0),
        lease_seconds=table.integer("lease_seconds", 900, minimum=1, maximum=86_400),
        attention_after_minutes=table.integer(
            "attention_after_minutes", 60, minimum=1, maximum=525_600
        ),
        sweep_period_hours=table.integer("sweep_period_hours", 24, minimum=1, maximum=8_760),
        sweep_max_per_run=table.integer("sweep_max_per_run", 10_000, minimum=0, maximum=10_000_000),
    )
    table.reject_unknown()
    return settings


def _read_links(table: _Table) -> LinkSettings:
    pattern = table.text("external_id_pattern", "superoffice-{id}")
    table.reject_unknown()
    if pattern is None:
        return LinkSettings()
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError:
        fields = ["?"]
    if fields != ["id"] or pattern.count("{id}") != 1:
        table.bad(
            "external_id_pattern",
            'must contain "{id}" exactly once and no other braces, e.g. "superoffice-{id}"',
        )
        return LinkSettings()
    return LinkSettings(external_id_pattern=pattern)


_SECTIONS: Final = ("ledger", "logging", "zendesk", "superoffice", "sync", "links")
_REQUIRED_SECTIONS: Final = ("zendesk", "superoffice")


def _parse(label: str, text: str, folder: Path, path: Path) -> Config:
    problems = _Problems(label)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"^(.*) \(at line (\d+), column (\d+)\)$", message, re.DOTALL)
        if where:
            msg, line, col = where.groups()
            raise ConfigError([f"{label}:{line}:{col}: invalid TOML: {msg}"]) from None
        raise ConfigError([f"{label}: invalid TOML: {message}"]) from None

    tables: dict[str, _Table] = {}
    for name, value in document.items():
        if name not in _SECTIONS:
            problems.add(name, "unknown section" + _suggest(name, _SECTIONS))
        elif not isinstance(value, dict):
            problems.add(name, f"must be a table ([{name}]), not {_type_name(value)}")
    for name in _SECTIONS:
        value = document.get(name)
        if value is None and name in _REQUIRED_SECTIONS:
            problems.add(name, f"missing section [{name}]")
        data = value if isinstance(value, dict) else {}
        tables[name] = _Table(problems, name, data, folder)

    ledger = tables["ledger"]
    ledger_url = _ledger_url(ledger)
    ledger.reject_unknown()
    logging_settings = _read_logging(tables["logging"])
    zendesk = (
        _read_zendesk(tables["zendesk"]) if isinstance(document.get("zendesk"), dict) else None
    )
    superoffice = (
        _read_superoffice(tables["superoffice"])
        if isinstance(document.get("superoffice"), dict)
        else None
    )
    sync = _read_sync(tables["sync"])
    links = _read_links(tables["links"])

    if problems.lines or zendesk is None or superoffice is None:
        raise ConfigError(problems.lines or [f"{label}: invalid configuration"])
    return Config(
        path=path,
        ledger_url=ledger_url,
        logging=logging_settings,
        zendesk=zendesk,
        superoffice=superoffice,
        sync=sync,
        links=links,
    )


def load_config(path: Path) -> Config:
    """Read and validate the config file; secrets are named, not read.

    Relative paths inside (ledger sqlite file, *_file secrets) are relative to the file's folder.
    """
    path = Path(path)
    label = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{label}: config file not found (give --config, set {ENV_CONFIG}, "
                f"or create one with `bridge init`)"
            ]
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([f"{label}: cannot read config file: {reason}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{label}: not UTF-8 text (byte {exc.start})"]) from None
    folder = path.expanduser().absolute().parent
    return _parse(label, text, folder, path)


def check_secrets(config: Config) -> list[str]:
    """Problems reading the secrets the configured auth modes need, `file:key: ...` each."""
    label = str(config.path)
    problems: list[str] = []
    for section, settings in (("zendesk", config.zendesk), ("superoffice", config.superoffice)):
        for base, secret in settings.secrets().items():
            issue = secret.problem()
            if issue:
                problems.append(f"{label}:{section}.{base}_{secret.kind}: {issue}")
    key_file = config.superoffice.public_key_file
    if config.superoffice.auth == "system_user" and key_file is not None:
        try:
            key_file.read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            problems.append(
                f"{label}:superoffice.public_key_file: cannot read {key_file}: {reason}"
            )
    return problems


def config_warnings(config: Config) -> list[str]:
    """What is allowed but worth a word: secret files others may read, plain http (which
    the config accepts only for loopback hosts: the sandbox)."""
    label = str(config.path)
    warnings: list[str] = []
    for section, settings in (("zendesk", config.zendesk), ("superoffice", config.superoffice)):
        for base, secret in settings.secrets().items():
            note = secret.warning()
            if note:
                warnings.append(f"{label}:{section}.{base}_{secret.kind}: {note}")
        if settings.base_url.lower().startswith("http://"):
            warnings.append(
                f"{label}:{section}.base_url: plain http (loopback only): credentials and "
                "ticket ids cross unencrypted"
            )
    return warnings


def resolve_config_path(cli_value: str | None) -> Path:
    """`--config` if given, else `$BRIDGE_CONFIG`, else `./bridge.toml`."""
    if cli_value:
        return Path(cli_value).expanduser()
    from_env = os.environ.get(ENV_CONFIG, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return Path(DEFAULT_CONFIG_NAME)


def example_config_text() -> str:
    """The commented example config shipped with the package (what `bridge init` writes)."""
    return (
        resources.files("bridge")
        .joinpath("data", "bridge.example.toml")
        .read_text(encoding="utf-8")
    )
