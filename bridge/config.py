"""The config file (`bridge.toml`): loading, validation and where to find it.

Validation collects every problem before failing, each as `file:key: what is wrong`, so one
edit-and-retry fixes them all. Unknown keys are errors because a typo such as `max_purge_per_run`
would otherwise silently fall back to a default that may purge more than intended.

Secrets are never in the file: it names environment variables (`*_env`) or files (`*_file`), and
`load_config` does not read them, so `bridge status` works without credentials.
`check_secrets` is the separate step that does.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bridge.core.decide import BOTH_WAYS, MANUAL, ConflictPolicy, Direction
from bridge.logging import LEVELS, LOG_FORMATS
from bridge.secrets import Secret
from bridge.settings import ConfigError, Problems, Table, VendorSettings, suggest, type_name
from bridge.values import parse_interval
from bridge.vendors.registry import CONFIG_ORDER, SIDES

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = [
    "CONFLICT_POLICIES",
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_PAIR",
    "DIRECTIONS",
    "ENV_CONFIG",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "Config",
    "ConfigError",
    "LinkSettings",
    "LoggingSettings",
    "PairChoiceError",
    "ReportSettings",
    "ServeSettings",
    "SyncSettings",
    "check_secrets",
    "example_config_text",
    "load_config",
    "load_pairs",
    "resolve_config_path",
]

ENV_CONFIG: Final = "BRIDGE_CONFIG"
DEFAULT_CONFIG_NAME: Final = "bridge.toml"

LOG_LEVELS: Final = tuple(LEVELS)
DIRECTIONS: Final = Direction.choices(SIDES)
CONFLICT_POLICIES: Final = ConflictPolicy.choices(SIDES)


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    format: str = "auto"
    level: str = "info"


@dataclass(frozen=True, slots=True)
class SyncSettings:
    direction: Direction = BOTH_WAYS
    conflict_policy: ConflictPolicy = MANUAL
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
class ServeSettings:
    """`bridge serve`: where it listens for webhooks and how it treats them
    (docs/webhooks.md). The webhook secrets are each vendor's (`webhook_secret_*`)."""

    host: str = "127.0.0.1"
    port: int = 8470
    #: the address the vendors call (what `bridge webhooks register` gives them); None:
    #: http://host:port
    public_url: str | None = None
    #: a call signed longer ago than this (or ahead of now) is refused: replays
    replay_window_seconds: int = 300
    #: a bigger body is refused (413) unread
    max_body_bytes: int = 65_536
    #: hints are gathered this long before one targeted run reads them, so a burst of
    #: deletes becomes a few bulk calls
    coalesce_seconds: float = 1.0

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ReportSettings:
    #: the Ed25519 private key (PEM) that signs every report written to a file; the path
    #: only: the key is read when a report is written, never copied
    signing_key_file: Path | None = None


#: the pair a config without `[pairs]` declares, and the one whose ledger is the URL itself
DEFAULT_PAIR: Final = "default"
#: a pair's name: also part of its ledger's file or schema name, so plain and short
_PAIR_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: how often a pair's worker syncs it when its `every` is not given
DEFAULT_EVERY: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Config:
    """One pair's view of the config file: what every command works with. A file that
    declares several pairs (`[pairs.NAME]`) gives one such view per pair
    (`load_pairs`); the ledger URL is then the pair's own (docs/pairs.md)."""

    path: Path
    ledger_url: str
    logging: LoggingSettings
    #: each registered vendor's parsed section, by section name (`zendesk` for `[zendesk]`)
    vendors: Mapping[str, VendorSettings]
    sync: SyncSettings
    links: LinkSettings
    report: ReportSettings = field(default_factory=ReportSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    #: this view's pair, and every pair the file declares (in the file's order)
    pair: str = DEFAULT_PAIR
    pair_names: tuple[str, ...] = (DEFAULT_PAIR,)
    #: the ledger URL as `[ledger] url` gives it: where what pairs share is kept (the
    #: budgets of a vendor account several pairs use)
    shared_ledger_url: str = ""
    #: how often `bridge worker` syncs this pair
    every: timedelta = DEFAULT_EVERY
    #: the vendor sections whose account (base URL) another pair of the file uses too:
    #: their calls and jobs are counted in a budget the pairs share (`bridge.budgets`)
    shared_sections: frozenset[str] = frozenset()
    #: the PostgreSQL ledger's password (`[ledger] password_file` or `password_env`):
    #: handed to libpq as PGPASSWORD by `apply_ledger_password`, never put in the URL
    ledger_password: Secret | None = None

    def shares_account(self, section: str) -> bool:
        return section in self.shared_sections

    def shared_accounts(self) -> frozenset[str]:
        """The vendor accounts this pair shares with another pair of its file, by key
        (`section:base url`)."""
        return frozenset(
            _account_key(section, self.vendors[section].base_url)
            for section in self.shared_sections
        )

    def ledger_url_under(self, url: str) -> str:
        """Where this pair's ledger is when `[ledger] url` is `url` (`bridge ledger copy`)."""
        if self.pair == DEFAULT_PAIR:
            return url
        from bridge.ledger.engine import pair_ledger_url  # the ledger's: imported when used

        return pair_ledger_url(url, self.pair)

    def section(self, name: str) -> Any:
        """A vendor's parsed section by its name in the file: the factory finds each
        registered vendor's settings with it (each vendor's own type, hence `Any`)."""
        if name not in self.vendors:
            raise KeyError(f"no vendor section [{name}] in the config")
        return self.vendors[name]


def apply_ledger_password(config: Config) -> None:
    """Give libpq the ledger's password from `[ledger] password_file`/`password_env`, as
    PGPASSWORD in this process's environment: every connection it makes (the ledger's, the
    workers' queue, Procrastinate's) reads it there, and the URL never holds it. Over a
    PGPASSWORD already set: the config names this ledger's. Raises `SecretError` (naming
    the file or variable, never the value) when it cannot be read."""
    if config.ledger_password is not None:
        os.environ["PGPASSWORD"] = config.ledger_password.reveal()


class PairChoiceError(ConfigError):
    """The config is valid, but the pair asked for is not one it declares (or none was
    named and it declares several)."""


# --- reading ----------------------------------------------------------------------------------


#: libpq's connection keywords that carry a secret: a URL's query is handed to the driver
#: as keywords, so `?password=` authenticates as the user part's password does
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


def url_secret(url: URL) -> str | None:
    """Where a database URL carries a password, or None: in its user part, or in its query
    (`?password=`). A ledger URL is printed (`status`, `init`, `ledger copy`) and logged,
    so it may hold none; the driver reads one from PGPASSWORD, ~/.pgpass or a passfile."""
    if url.password:
        return "in the user part"
    keys = sorted(key for key in url.query if key.lower() in _SECRET_QUERY_KEYS)
    return f"?{keys[0]}= in the query" if keys else None


def _ledger_url(table: Table) -> str:
    # SQLAlchemy's URL parser alone: reading a config loads no ledger (engine, tables)
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

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
    if secret := url_secret(url):
        table.bad(
            "url",
            f"must not contain a password ({secret}); use the database driver's own "
            "mechanism (PGPASSWORD, ~/.pgpass, or a file named by ?passfile=)",
        )
        return ""
    if url.get_backend_name() == "sqlite":
        db = url.database
        if db and db != ":memory:" and not db.startswith("file:"):
            path = Path(db).expanduser()
            if not path.is_absolute():
                return url.set(database=str(folder / path)).render_as_string(hide_password=False)
    return str(value)


def _read_logging(table: Table) -> LoggingSettings:
    fmt = table.choice("format", LOG_FORMATS, "auto")
    level_raw = table.text("level", "info")
    level = level_raw.lower() if isinstance(level_raw, str) else "info"
    if isinstance(level_raw, str) and level not in LOG_LEVELS:
        listed = ", ".join(f'"{o}"' for o in LOG_LEVELS)
        table.bad("level", f'must be one of {listed}, not "{level_raw}"')
        level = "info"
    table.reject_unknown()
    return LoggingSettings(format=fmt or "auto", level=level)


def _read_sync(table: Table) -> SyncSettings:
    settings = SyncSettings(
        direction=Direction.parse(table.choice("direction", DIRECTIONS, "both") or "both", SIDES),
        conflict_policy=ConflictPolicy.parse(
            table.choice("conflict_policy", CONFLICT_POLICIES, "manual") or "manual", SIDES
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


def _read_links(table: Table) -> LinkSettings:
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


def _read_serve(table: Table) -> ServeSettings:
    host = table.text("host", "127.0.0.1")
    settings = ServeSettings(
        host=host or "127.0.0.1",
        port=table.integer("port", 8470, minimum=1, maximum=65_535),
        public_url=table.url("public_url", None),
        replay_window_seconds=table.integer(
            "replay_window_seconds", 300, minimum=1, maximum=86_400
        ),
        max_body_bytes=table.integer("max_body_bytes", 65_536, minimum=1_024, maximum=16_777_216),
        coalesce_seconds=table.positive_number("coalesce_seconds", 1.0, maximum=600),
    )
    table.reject_unknown()
    return settings


def _read_report(table: Table) -> ReportSettings:
    path = table.path("signing_key_file")
    table.reject_unknown(
        {
            "signing_key": "the key itself never goes in the config: name its file with "
            "signing_key_file"
        }
    )
    return ReportSettings(signing_key_file=path)


_VENDOR_SECTIONS: Final = tuple(vendor.section for vendor in CONFIG_ORDER)
#: what each pair has of its own; `[sync]` and `[links]` at the top are every pair's defaults
_PAIR_SECTIONS: Final = (*_VENDOR_SECTIONS, "sync", "links")
_SECTIONS: Final = (
    "ledger",
    "logging",
    *_VENDOR_SECTIONS,
    "sync",
    "links",
    "report",
    "serve",
    "pairs",
)


def _decode(label: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"^(.*) \(at line (\d+), column (\d+)\)$", message, re.DOTALL)
        if where:
            msg, line, col = where.groups()
            raise ConfigError([f"{label}:{line}:{col}: invalid TOML: {msg}"]) from None
        raise ConfigError([f"{label}: invalid TOML: {message}"]) from None


def _table(
    problems: Problems, document: Mapping[str, Any], name: str, folder: Path, *, prefix: str = ""
) -> Table:
    value = document.get(name)
    return Table(problems, f"{prefix}{name}", value if isinstance(value, dict) else {}, folder)


@dataclass(frozen=True, slots=True)
class _PairSections:
    """One pair's own sections, before they are read: its vendors', and its `[sync]` and
    `[links]` laid over the top-level ones key by key."""

    name: str
    prefix: str  # "" for the top-level pair, "pairs.NAME." for a named one
    sections: Mapping[str, Any]
    every: Any


def _declared_pairs(problems: Problems, document: Mapping[str, Any]) -> list[_PairSections]:
    """The pairs the file declares: `[pairs.NAME]` tables, or the top-level sections as one
    pair named "default"."""
    pairs = document.get("pairs")
    if pairs is None:
        for name in _VENDOR_SECTIONS:
            if name not in document:
                problems.add(name, f"missing section [{name}]")
        return [_PairSections(DEFAULT_PAIR, "", document, None)]
    if not isinstance(pairs, dict) or not pairs:
        problems.add("pairs", "must hold one table per pair, e.g. [pairs.acme.zendesk]")
        return []
    for name in _VENDOR_SECTIONS:
        if name in document:
            problems.add(name, f"with [pairs], each pair has its own: [pairs.NAME.{name}]")
    declared: list[_PairSections] = []
    for pair, body in pairs.items():
        where = f"pairs.{pair}"
        if not _PAIR_NAME.fullmatch(pair):
            problems.add(where, "a pair's name is 1-40 of a-z, 0-9 and _, starting with a letter")
            continue
        if not isinstance(body, dict):
            problems.add(where, f"must be a table ([{where}]), not {type_name(body)}")
            continue
        for key in body:
            if key not in (*_PAIR_SECTIONS, "every"):
                problems.add(
                    f"{where}.{key}", "unknown key" + suggest(key, (*_PAIR_SECTIONS, "every"))
                )
        for name in _VENDOR_SECTIONS:
            if name not in body:
                problems.add(where, f"missing section [{where}.{name}]")
            elif not isinstance(body[name], dict):
                problems.add(f"{where}.{name}", f"must be a table, not {type_name(body[name])}")
        sections = {name: body.get(name) for name in _VENDOR_SECTIONS}
        for name in ("sync", "links"):  # the top-level section, laid over key by key
            own = body.get(name, {})
            if not isinstance(own, dict):
                problems.add(f"{where}.{name}", f"must be a table, not {type_name(own)}")
                own = {}
            top = document.get(name)
            sections[name] = {**(top if isinstance(top, dict) else {}), **own}
        declared.append(_PairSections(pair, f"{where}.", sections, body.get("every")))
    return declared


def _read_every(problems: Problems, pair: _PairSections) -> timedelta:
    if pair.every is None:
        return DEFAULT_EVERY
    key = f"{pair.prefix}every"
    if not isinstance(pair.every, str):
        problems.add(key, f'must be a string like "5m", not {type_name(pair.every)}')
        return DEFAULT_EVERY
    try:
        return parse_interval(pair.every)
    except ValueError as exc:
        problems.add(key, str(exc))
        return DEFAULT_EVERY


def _pair_ledger_url(problems: Problems, shared_url: str, pair: str) -> str:
    """A named pair's ledger URL (only a file with `[pairs]` needs the ledger's dialects)."""
    from bridge.ledger.engine import LedgerURLError, pair_ledger_url

    try:
        return pair_ledger_url(shared_url, pair)
    except LedgerURLError as exc:
        problems.add("ledger.url", str(exc))
        return shared_url


def _parse_pairs(label: str, text: str, folder: Path, path: Path) -> dict[str, Config]:
    problems = Problems(label)
    document = _decode(label, text)
    for name, value in document.items():
        if name not in _SECTIONS:
            problems.add(name, "unknown section" + suggest(name, _SECTIONS))
        elif not isinstance(value, dict):
            problems.add(name, f"must be a table ([{name}]), not {type_name(value)}")

    ledger = _table(problems, document, "ledger", folder)
    shared_url = _ledger_url(ledger)
    password = ledger.secret("password", required=False)
    if password is not None and shared_url.startswith("sqlite"):
        ledger.bad(f"password_{password.kind}", "is for a PostgreSQL ledger; SQLite has none")
    ledger.reject_unknown()
    logging_settings = _read_logging(_table(problems, document, "logging", folder))
    report = _read_report(_table(problems, document, "report", folder))
    serve = _read_serve(_table(problems, document, "serve", folder))
    declared = _declared_pairs(problems, document)
    names = tuple(pair.name for pair in declared)

    configs: dict[str, Config] = {}
    for pair in declared:
        tables = {
            name: _table(problems, pair.sections, name, folder, prefix=pair.prefix)
            for name in _PAIR_SECTIONS
        }
        vendors = {
            vendor.section: vendor.read_settings(tables[vendor.section])
            for vendor in CONFIG_ORDER
            if isinstance(pair.sections.get(vendor.section), dict)
        }
        sync = _read_sync(tables["sync"])
        links = _read_links(tables["links"])
        every = _read_every(problems, pair)
        ledger_url = shared_url
        if pair.name != DEFAULT_PAIR and shared_url:
            ledger_url = _pair_ledger_url(problems, shared_url, pair.name)
        read = {name: settings for name, settings in vendors.items() if settings is not None}
        if len(read) == len(_VENDOR_SECTIONS):
            configs[pair.name] = Config(
                path=path,
                ledger_url=ledger_url,
                logging=logging_settings,
                vendors=read,
                sync=sync,
                links=links,
                report=report,
                serve=serve,
                pair=pair.name,
                pair_names=names,
                shared_ledger_url=shared_url,
                every=every,
                ledger_password=password,
            )
    if problems.lines or len(configs) < len(declared) or not configs:
        raise ConfigError(problems.lines or [f"{label}: invalid configuration"])
    return _with_shared_accounts(configs)


def _account_key(section: str, base_url: str) -> str:
    """One vendor account, however its pairs spell its URL's case or final slash."""
    return f"{section}:{base_url.rstrip('/').lower()}"


def _with_shared_accounts(configs: dict[str, Config]) -> dict[str, Config]:
    """Each pair's config, told which of its vendor accounts another pair uses too."""
    users = Counter(
        _account_key(section, settings.base_url)
        for config in configs.values()
        for section, settings in config.vendors.items()
    )
    return {
        name: replace(
            config,
            shared_sections=frozenset(
                section
                for section, settings in config.vendors.items()
                if users[_account_key(section, settings.base_url)] > 1
            ),
        )
        for name, config in configs.items()
    }


def _read_file(path: Path) -> tuple[str, str, Path]:
    """The file's text, its label in messages, and its folder (relative paths start there)."""
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
    return text, label, path.expanduser().absolute().parent


def load_pairs(path: Path) -> dict[str, Config]:
    """Every pair the config file declares, by name in the file's order, each validated
    (every problem of every pair is reported at once); secrets are named, not read."""
    text, label, folder = _read_file(path)
    return _parse_pairs(label, text, folder, Path(path))


def load_config(path: Path, pair: str | None = None) -> Config:
    """Read and validate the config file; secrets are named, not read. The view of `pair`,
    which may be left out when the file declares only one.

    Relative paths inside (ledger sqlite file, *_file secrets) are relative to the file's folder.
    """
    pairs = load_pairs(path)
    if pair is None:
        if len(pairs) == 1:
            return next(iter(pairs.values()))
        raise PairChoiceError(
            [f"{path}: declares the pairs {', '.join(pairs)}: choose one with --pair NAME"]
        )
    if pair not in pairs:
        raise PairChoiceError(
            [
                f"{path}: no pair named {pair!r} (declared: {', '.join(pairs)})"
                + suggest(pair, tuple(pairs))
            ]
        )
    return pairs[pair]


def _keys_of(config: Config) -> str:
    """What the file's keys of this pair's sections start with: `pairs.NAME.` for a pair
    declared by name, nothing for the file's top-level one."""
    return "" if config.pair == DEFAULT_PAIR else f"pairs.{config.pair}."


def check_secrets(config: Config) -> list[str]:
    """Problems reading the secrets the configured auth modes need, `file:key: ...` each."""
    label, keys = str(config.path), _keys_of(config)
    problems: list[str] = []
    for section, settings in config.vendors.items():
        for base, secret in settings.secrets().items():
            issue = secret.problem()
            if issue:
                problems.append(f"{label}:{keys}{section}.{base}_{secret.kind}: {issue}")
    for section, settings in config.vendors.items():
        for key, issue in settings.file_problems():
            problems.append(f"{label}:{keys}{section}.{key}: {issue}")
    return problems


def config_warnings(config: Config) -> list[str]:
    """What is allowed but worth a word: secret files others may read, plain http (which
    the config accepts only for loopback hosts: the sandbox)."""
    label, keys = str(config.path), _keys_of(config)
    warnings: list[str] = []
    for section, settings in config.vendors.items():
        for base, secret in settings.secrets().items():
            note = secret.warning()
            if note:
                warnings.append(f"{label}:{keys}{section}.{base}_{secret.kind}: {note}")
        if settings.base_url.lower().startswith("http://"):
            warnings.append(
                f"{label}:{keys}{section}.base_url: plain http (loopback only): credentials and "
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
