"""Config loading: defaults, validation messages (`file:key: what`), secrets, path resolution."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge import secrets
from bridge.config import (
    Config,
    ConfigError,
    LinkSettings,
    check_secrets,
    config_warnings,
    example_config_text,
    load_config,
    resolve_config_path,
)
from bridge.core.decide import ConflictPolicy, ConflictRule, Direction
from bridge.secrets import Secret
from bridge.vendors.registry import SIDES
from bridge.vendors.registry import ZENDESK as ZENDESK_SIDE

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "bridge.example.toml"
PACKAGED = ROOT / "bridge" / "data" / "bridge.example.toml"
EXAMPLE_ENV_VARS = ("ZENDESK_API_TOKEN", "SUPEROFFICE_TICKET", "SUPEROFFICE_APP_TOKEN")

ZENDESK: dict[str, Any] = {
    "base_url": "https://acme.zendesk.com",
    "email": "admin@example.com",
    "token_env": "ZD_TOKEN",
}
SUPEROFFICE: dict[str, Any] = {
    "base_url": "https://sod.superoffice.com/Cust1",
    "tenant": "Cust1",
    "ticket_env": "SO_TICKET",
    "app_token_env": "SO_APP",
}


@pytest.fixture(autouse=True)
def _clean_registry() -> None:
    secrets._forget_registered_values()


def render(sections: dict[str, dict[str, Any] | None]) -> str:
    """TOML from plain values (JSON scalars are valid TOML); None leaves a section out."""
    out = []
    for name, keys in sections.items():
        if keys is None:
            continue
        out.append(f"[{name}]")
        out += [f"{k} = {json.dumps(v)}" for k, v in keys.items() if v is not None]
    return "\n".join(out) + "\n"


def write(tmp_path: Path, **sections: dict[str, Any] | None) -> Path:
    """A config with the minimal valid [zendesk] and [superoffice], keys overridden per section.

    A key set to None is removed; `zendesk=None` leaves the section out.
    """
    full: dict[str, dict[str, Any] | None] = {}
    for name, base in (("zendesk", ZENDESK), ("superoffice", SUPEROFFICE)):
        full[name] = None if name in sections and sections[name] is None else dict(base)
    for name, keys in sections.items():
        if keys is None:
            continue
        merged = {**(full.get(name) or {}), **keys}
        full[name] = {k: v for k, v in merged.items() if v is not None}
    path = tmp_path / "bridge.toml"
    path.write_text(render(full), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def one_problem(path: Path) -> str:
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


# --- the example ---------------------------------------------------------------------------------


def test_example_loads_with_no_secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EXAMPLE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    config = load_config(EXAMPLE)
    assert config.path == EXAMPLE
    assert config.ledger_url == f"sqlite:///{EXAMPLE.parent / 'bridge.db'}"
    assert config.section("zendesk").token == Secret.from_env("ZENDESK_API_TOKEN")
    assert config.section("zendesk").bridge_user_id is None
    assert config.section("superoffice").auth == "soticket"
    assert config.section("superoffice").api_url == "https://sod.superoffice.com/Cust12345/api/v1"
    assert config.sync.direction == Direction()
    assert config.sync.conflict_policy == ConflictPolicy()
    assert check_secrets(config) == [
        f"{EXAMPLE}:zendesk.token_env: environment variable ZENDESK_API_TOKEN is not set",
        f"{EXAMPLE}:superoffice.ticket_env: environment variable SUPEROFFICE_TICKET is not set",
        f"{EXAMPLE}:superoffice.app_token_env: "
        "environment variable SUPEROFFICE_APP_TOKEN is not set",
    ]


def test_packaged_example_is_identical_to_the_repository_copy() -> None:
    assert PACKAGED.read_bytes() == EXAMPLE.read_bytes()
    assert example_config_text() == EXAMPLE.read_text(encoding="utf-8")


def test_every_documented_key_appears_in_the_example() -> None:
    docs = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    text = example_config_text()
    for key in (
        "url",
        "format",
        "level",
        "base_url",
        "auth",
        "email",
        "token_env",
        "token_file",
        "timeout_seconds",
        "job_limit",
        "bridge_user_id",
        "tenant",
        "ticket_env",
        "app_token_env",
        "bearer_env",
        "username",
        "password_env",
        "system_user_token_env",
        "private_key_file",
        "login_url",
        "public_key_file",
        "retention_days",
        "requests_per_second",
        "bridge_associate_id",
        "direction",
        "conflict_policy",
        "propagate_purges",
        "propagate_retention_purges",
        "max_purges_per_run",
        "lease_seconds",
        "external_id_pattern",
    ):
        assert f"{key} =" in text, key
        assert f"`{key}`" in docs, key


# --- defaults and values -------------------------------------------------------------------------


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    assert isinstance(config, Config)
    assert config.ledger_url == f"sqlite:///{tmp_path / 'bridge.db'}"
    assert (config.logging.format, config.logging.level) == ("auto", "info")
    z = config.section("zendesk")
    assert (z.auth, z.timeout_seconds, z.job_limit, z.bridge_user_id) == ("api_token", 30, 30, None)
    s = config.section("superoffice")
    assert (s.retention_days, s.requests_per_second, s.timeout_seconds) == (14, 10, 30)
    assert s.login_url is None
    assert s.bridge_associate_id is None
    assert s.secrets() == {
        "ticket": Secret.from_env("SO_TICKET"),
        "app_token": Secret.from_env("SO_APP"),
    }
    sync = config.sync
    assert sync.direction.label(SIDES) == "both"
    assert str(sync.conflict_policy) == "manual"
    assert (sync.propagate_purges, sync.propagate_retention_purges) == (True, False)
    assert (sync.max_purges_per_run, sync.lease_seconds) == (100, 900)
    assert config.links.external_id_pattern == "superoffice-{id}"


def test_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ledger={"url": "sqlite:///data/ledger.db"},
        logging={"format": "json", "level": "DEBUG"},
        zendesk={"base_url": "http://127.0.0.1:8081/", "timeout_seconds": 2.5, "job_limit": 5},
        superoffice={"retention_days": 0, "requests_per_second": 0.5, "bridge_associate_id": 7},
        sync={
            "direction": "zendesk-to-superoffice",
            "conflict_policy": "keep-active",
            "propagate_purges": False,
            "propagate_retention_purges": True,
            "max_purges_per_run": 0,
            "lease_seconds": 60,
        },
        links={"external_id_pattern": "so:{id}:x"},
    )
    config = load_config(path)
    assert config.ledger_url == f"sqlite:///{tmp_path / 'data' / 'ledger.db'}"
    assert (config.logging.format, config.logging.level) == ("json", "debug")
    assert config.section("zendesk").base_url == "http://127.0.0.1:8081"
    assert (config.section("zendesk").timeout_seconds, config.section("zendesk").job_limit) == (
        2.5,
        5,
    )
    assert config.section("superoffice").retention_days == 0
    assert config.section("superoffice").requests_per_second == 0.5
    assert config.section("superoffice").bridge_associate_id == 7
    assert config.sync.direction == Direction(ZENDESK_SIDE)
    assert config.sync.conflict_policy == ConflictPolicy(ConflictRule.KEEP_ACTIVE)
    assert config.sync.propagate_purges is False
    assert config.sync.propagate_retention_purges is True
    assert (config.sync.max_purges_per_run, config.sync.lease_seconds) == (0, 60)
    assert config.links.external_id_pattern == "so:{id}:x"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////abs/ledger.db", "sqlite:////abs/ledger.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql://bridge@db.internal/bridge", "postgresql://bridge@db.internal/bridge"),
    ],
)
def test_ledger_urls_kept_as_given(tmp_path: Path, url: str, expected: str) -> None:
    assert load_config(write(tmp_path, ledger={"url": url})).ledger_url == expected


def test_relative_sqlite_path_is_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    write(folder, ledger={"url": "sqlite:///bridge.db"})
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("etc/bridge.toml"))
    assert config.ledger_url == f"sqlite:///{folder / 'bridge.db'}"


def test_zendesk_oauth_needs_no_email(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, zendesk={"auth": "oauth", "email": None}))
    assert config.section("zendesk").auth == "oauth"
    assert config.section("zendesk").email is None


def test_secret_files_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, zendesk={"token_env": None, "token_file": "secrets/zd.token"})
    config = load_config(path)
    assert config.section("zendesk").token == Secret.from_file(tmp_path / "secrets" / "zd.token")
    assert check_secrets(config)[0] == (
        f"{path}:zendesk.token_file: cannot read secret file "
        f"{tmp_path / 'secrets' / 'zd.token'} (No such file or directory)"
    )


@pytest.mark.parametrize(
    ("auth", "keys", "expected_secrets"),
    [
        ("bearer", {"bearer_env": "SO_BEARER"}, {"bearer": Secret.from_env("SO_BEARER")}),
        (
            "bearer",
            {"bearer_env": "SO_BEARER", "app_token_env": "SO_APP"},
            {"bearer": Secret.from_env("SO_BEARER"), "app_token": Secret.from_env("SO_APP")},
        ),
        (
            "basic",
            {"username": "admin", "password_env": "SO_PW"},
            {"password": Secret.from_env("SO_PW")},
        ),
        (
            "system_user",
            {
                "system_user_token_env": "SO_SYS",
                "private_key_env": "SO_KEY",
                "app_token_env": "SO_APP",
            },
            {
                "system_user_token": Secret.from_env("SO_SYS"),
                "private_key": Secret.from_env("SO_KEY"),
                "app_token": Secret.from_env("SO_APP"),
            },
        ),
    ],
)
def test_superoffice_auth_modes(
    tmp_path: Path, auth: str, keys: dict[str, Any], expected_secrets: dict[str, Secret]
) -> None:
    so = dict.fromkeys(SUPEROFFICE)
    so.update(base_url="https://sod.superoffice.com/Cust1", tenant="Cust1", auth=auth, **keys)
    config = load_config(write(tmp_path, superoffice=so))
    assert config.section("superoffice").auth == auth
    assert config.section("superoffice").secrets() == expected_secrets


def test_system_user_defaults_and_files(tmp_path: Path) -> None:
    so = dict.fromkeys(SUPEROFFICE)
    so.update(
        base_url="http://127.0.0.1:8082/Cust1",
        tenant="Cust1",
        auth="system_user",
        system_user_token_env="SO_SYS",
        private_key_file="keys/app.pem",
        app_token_file="/abs/app.token",
        public_key_file="keys/login.pub",
    )
    path = write(tmp_path, superoffice=so)
    config = load_config(path)
    s = config.section("superoffice")
    assert s.login_url == "http://127.0.0.1:8082/Login"
    assert s.private_key == Secret.from_file(tmp_path / "keys" / "app.pem")
    assert s.app_token == Secret.from_file("/abs/app.token")
    assert s.public_key_file == tmp_path / "keys" / "login.pub"
    found = check_secrets(config)
    assert f"{path}:superoffice.system_user_token_env: environment variable SO_SYS is not set" in (
        found
    )
    assert found[-1] == (
        f"{path}:superoffice.public_key_file: cannot read {tmp_path / 'keys' / 'login.pub'}: "
        "No such file or directory"
    )


def test_check_secrets_is_empty_when_everything_is_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ticket").write_text("7T:ticket-value\n", encoding="utf-8")
    monkeypatch.setenv("ZD_TOKEN", "zendesk-token-value")
    monkeypatch.setenv("SO_APP", "app-token-value")
    path = write(tmp_path, superoffice={"ticket_env": None, "ticket_file": "ticket"})
    assert check_secrets(load_config(path)) == []
    # reading them registered them for log redaction
    assert {"zendesk-token-value", "7T:ticket-value", "app-token-value"} <= (
        secrets.registered_secret_values()[1]
    )


def test_check_secrets_reports_empty_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZD_TOKEN", "")
    monkeypatch.setenv("SO_TICKET", "ticket-value")
    monkeypatch.setenv("SO_APP", "app-value")
    path = write(tmp_path)
    assert check_secrets(load_config(path)) == [
        f"{path}:zendesk.token_env: environment variable ZD_TOKEN is empty"
    ]


def test_load_config_does_not_read_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZD_TOKEN", "never-read-by-load")
    load_config(write(tmp_path))
    assert "never-read-by-load" not in secrets.registered_secret_values()[1]


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sections", "key", "message"),
    [
        # unknown sections and keys
        ({"zendsk": {"x": 1}}, "zendsk", 'unknown section (did you mean "zendesk"?)'),
        ({"sync": {"max_purge_per_run": 5}}, "sync.max_purge_per_run",
         'unknown key (did you mean "max_purges_per_run"?)'),
        ({"ledger": {"path": "x"}}, "ledger.path", "unknown key"),
        ({"zendesk": {"password": "x"}}, "zendesk.password", "unknown key"),
        ({"superoffice": {"ticket": "x"}}, "superoffice.ticket",
         "unknown key: secrets are never written in the config; "
         "name them with ticket_env or ticket_file"),
        ({"zendesk": {"token": "abc"}}, "zendesk.token",
         "unknown key: secrets are never written in the config; "
         "name them with token_env or token_file"),
        # wrong types
        ({"zendesk": {"job_limit": "30"}}, "zendesk.job_limit",
         "must be a whole number, not a string"),
        ({"zendesk": {"job_limit": 3.0}}, "zendesk.job_limit",
         "must be a whole number without a decimal point"),
        ({"sync": {"max_purges_per_run": True}}, "sync.max_purges_per_run",
         "must be a whole number, not a boolean"),
        ({"sync": {"propagate_purges": "yes"}}, "sync.propagate_purges",
         "must be true or false, not a string"),
        ({"sync": {"propagate_purges": 1}}, "sync.propagate_purges",
         "must be true or false, not an integer"),
        ({"zendesk": {"timeout_seconds": "30"}}, "zendesk.timeout_seconds",
         "must be a number, not a string"),
        ({"zendesk": {"base_url": 5}}, "zendesk.base_url", "must be a string, not an integer"),
        ({"zendesk": {"email": ""}}, "zendesk.email", "must not be empty"),
        # enums
        ({"sync": {"direction": "bothh"}}, "sync.direction",
         'must be one of "both", "superoffice-to-zendesk", "zendesk-to-superoffice", '
         'not "bothh" (did you mean "both"?)'),
        ({"sync": {"conflict_policy": "zendesk"}}, "sync.conflict_policy",
         'must be one of "manual", "superoffice-wins", "zendesk-wins", "latest-wins", '
         '"keep-active", not "zendesk"'),
        ({"logging": {"format": "text"}}, "logging.format",
         'must be one of "auto", "json", "console", not "text"'),
        ({"logging": {"level": "verbose"}}, "logging.level",
         'must be one of "debug", "info", "warning", "error", not "verbose"'),
        ({"zendesk": {"auth": "password"}}, "zendesk.auth",
         'must be one of "api_token", "oauth", not "password"'),
        # URLs
        ({"zendesk": {"base_url": "ftp://acme.zendesk.com"}}, "zendesk.base_url",
         'must be an http or https URL (scheme is "ftp")'),
        ({"zendesk": {"base_url": "acme.zendesk.com"}}, "zendesk.base_url",
         "must be an http or https URL (scheme is none)"),
        ({"zendesk": {"base_url": "https://"}}, "zendesk.base_url", "must name a host"),
        ({"zendesk": {"base_url": "https://a:b@acme.zendesk.com"}}, "zendesk.base_url",
         "must not contain credentials (name secrets with *_env or *_file keys)"),
        ({"zendesk": {"base_url": "https://acme.zendesk.com/?x=1"}}, "zendesk.base_url",
         "must not have a query string or fragment"),
        ({"zendesk": {"base_url": "https://acme.zendesk.com:99999"}}, "zendesk.base_url",
         "is not a valid URL"),
        ({"zendesk": {"base_url": "https://acme.zendesk.com/api/v2"}}, "zendesk.base_url",
         "must not end with /api/v2 (bridge adds it)"),
        ({"superoffice": {"base_url": "https://sod.superoffice.com/Cust1/api/v1/"}},
         "superoffice.base_url", "must not end with /api/v1 (bridge adds it)"),
        ({"ledger": {"url": "not a url"}}, "ledger.url",
         "is not a valid SQLAlchemy database URL (e.g. sqlite:///bridge.db)"),
        ({"ledger": {"url": "postgresql://u:pw@db/bridge"}}, "ledger.url",
         "must not contain a password (in the user part); use the database driver's own "
         "mechanism (PGPASSWORD, ~/.pgpass, or a file named by ?passfile=)"),
        # libpq takes the query's keywords as its own: ?password= authenticates too
        ({"ledger": {"url": "postgresql+psycopg://u@db/bridge?password=pw"}}, "ledger.url",
         "must not contain a password (?password= in the query); use the database "
         "driver's own mechanism (PGPASSWORD, ~/.pgpass, or a file named by ?passfile=)"),
        ({"ledger": {"url": "postgresql+psycopg://u@db/bridge?sslmode=require&SSLPassword=k"}},
         "ledger.url",
         "must not contain a password (?SSLPassword= in the query); use the database "
         "driver's own mechanism (PGPASSWORD, ~/.pgpass, or a file named by ?passfile=)"),
        # numbers
        ({"sync": {"max_purges_per_run": -1}}, "sync.max_purges_per_run", "must not be negative"),
        ({"superoffice": {"retention_days": -14}}, "superoffice.retention_days",
         "must not be negative"),
        ({"zendesk": {"bridge_user_id": -1}}, "zendesk.bridge_user_id", "must not be negative"),
        ({"zendesk": {"job_limit": 0}}, "zendesk.job_limit", "must be at least 1"),
        ({"sync": {"lease_seconds": 0}}, "sync.lease_seconds", "must be at least 1"),
        ({"zendesk": {"timeout_seconds": 0}}, "zendesk.timeout_seconds",
         "must be a number greater than 0"),
        ({"superoffice": {"requests_per_second": -2.5}}, "superoffice.requests_per_second",
         "must be a number greater than 0"),
        ({"sync": {"lease_seconds": 10**30}}, "sync.lease_seconds",
         f"must be at most 86,400 (is {10**30:,})"),
        ({"sync": {"attention_after_minutes": 10**12}}, "sync.attention_after_minutes",
         f"must be at most 525,600 (is {10**12:,})"),
        ({"sync": {"sweep_period_hours": 0}}, "sync.sweep_period_hours", "must be at least 1"),
        ({"superoffice": {"retention_days": 100_000}}, "superoffice.retention_days",
         "must be at most 3,650 (is 100,000)"),
        ({"superoffice": {"bridge_associate_id": 2**31}}, "superoffice.bridge_associate_id",
         f"must be at most 2,147,483,647 (is {2**31:,})"),
        ({"zendesk": {"bridge_user_id": 2**63}}, "zendesk.bridge_user_id",
         f"must be at most {2**63 - 1:,} (is {2**63:,})"),
        ({"zendesk": {"timeout_seconds": 1e9}}, "zendesk.timeout_seconds",
         "must be at most 600 (is 1e+09)"),
        ({"zendesk": {"base_url": "http://acme.zendesk.com"}}, "zendesk.base_url",
         "must be https (plain http is only for 127.0.0.1, ::1 or localhost)"),
        # secrets: exactly one of *_env / *_file, names not values
        ({"zendesk": {"token_file": "zd.token"}}, "zendesk.token_env",
         "give either token_env or token_file, not both"),
        ({"zendesk": {"token_env": None}}, "zendesk.token_env",
         "missing (required): set token_env or token_file"),
        ({"superoffice": {"app_token_env": None}}, "superoffice.app_token_env",
         "missing (required): set app_token_env or app_token_file"),
        ({"zendesk": {"token_env": "6wiIB/WbGk+Mo1=="}}, "zendesk.token_env",
         "must be the name of an environment variable (letters, digits, _), "
         "not the secret itself"),
        ({"zendesk": {"token_env": 3}}, "zendesk.token_env", "must be a string, not an integer"),
        # auth-mode specific keys
        ({"zendesk": {"email": None}}, "zendesk.email",
         'missing (required with auth = "api_token")'),
        ({"zendesk": {"auth": "oauth"}}, "zendesk.email", 'only used with auth = "api_token"'),
        ({"zendesk": {"email": "admin"}}, "zendesk.email", "must be an email address"),
        ({"superoffice": {"bearer_env": "SO_BEARER"}}, "superoffice.bearer_env",
         'only used with auth = "bearer" (auth is "soticket")'),
        ({"superoffice": {"username": "admin"}}, "superoffice.username",
         'only used with auth = "basic" (auth is "soticket")'),
        ({"superoffice": {"private_key_file": "k.pem"}}, "superoffice.private_key_file",
         'only used with auth = "system_user" (auth is "soticket")'),
        ({"superoffice": {"auth": "basic", "ticket_env": None, "username": "u",
                          "password_env": "P"}},
         "superoffice.app_token_env",
         'only used with auth = "soticket" or "bearer" or "system_user" (auth is "basic")'),
        ({"superoffice": {"auth": "oauth"}}, "superoffice.auth",
         'must be one of "soticket", "bearer", "basic", "system_user", not "oauth"'),
        ({"superoffice": {"tenant": "Cust 1"}}, "superoffice.tenant",
         "must be a tenant id such as Cust12345 (letters, digits, _ . -)"),
        ({"superoffice": {"tenant": None}}, "superoffice.tenant", "missing (required)"),
        ({"zendesk": {"base_url": None}}, "zendesk.base_url", "missing (required)"),
        # links
        ({"links": {"external_id_pattern": "superoffice"}}, "links.external_id_pattern",
         'must contain "{id}" exactly once and no other braces, e.g. "superoffice-{id}"'),
        ({"links": {"external_id_pattern": "{id}-{id}"}}, "links.external_id_pattern",
         'must contain "{id}" exactly once and no other braces, e.g. "superoffice-{id}"'),
        ({"links": {"external_id_pattern": "{brand}-{id}"}}, "links.external_id_pattern",
         'must contain "{id}" exactly once and no other braces, e.g. "superoffice-{id}"'),
        # sections
        ({"zendesk": None}, "zendesk", "missing section [zendesk]"),
    ],
)  # fmt: skip
def test_each_error_has_its_exact_message(
    tmp_path: Path, sections: dict[str, dict[str, Any] | None], key: str, message: str
) -> None:
    path = write(tmp_path, **sections)
    assert one_problem(path) == f"{path}:{key}: {message}"


def test_secret_values_are_never_echoed_in_errors(tmp_path: Path) -> None:
    pasted = "6wiIB/WbGk+Mo1pastedTokenValue=="
    path = write(tmp_path, zendesk={"token_env": pasted, "password": pasted})
    assert all(pasted not in p for p in problems(path))


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    # a top-level key must come before the first table, or it would belong to that table
    path.write_text('zendesk = "x"\n' + render({"superoffice": SUPEROFFICE}), encoding="utf-8")
    assert one_problem(path) == f"{path}:zendesk: must be a table ([zendesk]), not a string"


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        zendesk={"job_limit": -1, "timeout_seconds": "x"},
        sync={"direction": "up", "colour": "blue"},
    )
    assert problems(path) == [
        f"{path}:zendesk.timeout_seconds: must be a number, not a string",
        f"{path}:zendesk.job_limit: must be at least 1",
        f'{path}:sync.direction: must be one of "both", "superoffice-to-zendesk", '
        f'"zendesk-to-superoffice", not "up"',
        f"{path}:sync.colour: unknown key",
    ]


def test_invalid_toml_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text('[zendesk]\nbase_url = "https://x.zendesk.com"\njob_limit = = 3\n', "utf-8")
    assert one_problem(path) == f"{path}:3:13: invalid TOML: Invalid value"


def test_duplicate_key_is_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text("[sync]\nlease_seconds = 1\nlease_seconds = 2\n", "utf-8")
    message = one_problem(path)
    assert message.startswith(f"{path}:3:")
    assert "invalid TOML" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert one_problem(path) == (
        f"{path}: config file not found (give --config, set BRIDGE_CONFIG, "
        "or create one with `bridge init`)"
    )


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    assert one_problem(tmp_path) == f"{tmp_path}: cannot read config file: Is a directory"
    path = tmp_path / "bridge.toml"
    path.write_bytes(b"[sync]\n# caf\xe9\n")
    assert one_problem(path) == f"{path}: not UTF-8 text (byte 12)"


# --- config path resolution ----------------------------------------------------------------------


def test_config_path_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    assert resolve_config_path(None) == Path("bridge.toml")
    monkeypatch.setenv("BRIDGE_CONFIG", "/etc/bridge/prod.toml")
    assert resolve_config_path(None) == Path("/etc/bridge/prod.toml")
    assert resolve_config_path("cli.toml") == Path("cli.toml")
    monkeypatch.setenv("BRIDGE_CONFIG", "")
    assert resolve_config_path(None) == Path("bridge.toml")


# --- links ---------------------------------------------------------------------------------------


def test_external_id_pattern_round_trip() -> None:
    links = LinkSettings("so-{id}.x")
    assert links.format_external_id(42) == "so-42.x"
    assert links.parse_external_id("so-42.x") == 42
    for other in ("so-42", "so-42ax", "so-0.x", "so--1.x", "xso-42.x", "so-.x", None, ""):
        assert links.parse_external_id(other) is None


def test_a_secret_file_others_may_read_and_plain_http_are_warned_about(tmp_path: Path) -> None:
    secret = tmp_path / "zd.token"
    secret.write_text("t0ken", encoding="utf-8")
    secret.chmod(0o644)
    path = write(
        tmp_path,
        zendesk={"base_url": "http://127.0.0.1:8081", "token_env": None, "token_file": "zd.token"},
    )
    warnings = config_warnings(load_config(path))
    assert any("zendesk.token_file" in w and "readable by others (mode 644)" in w for w in warnings)
    assert any("zendesk.base_url: plain http" in w for w in warnings)
    secret.chmod(0o600)
    assert not any("readable by others" in w for w in config_warnings(load_config(path)))
