"""Bad config files (`bridge.toml`), run through `bridge check --offline` and `bridge sync`.

Each case starts from the config `bridge sandbox serve --write-config` writes for the two
simulators (in a fresh folder, with its secret files and ledger), changes one thing, and
expects exit 2 with `file:key: problem` lines naming the key (docs/configuration.md:
"A wrong key, type or value is reported as `file:key: what is wrong`"), or an `Error:`
line, before any vendor call; the ledger file is left as it was and no secret is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.sandbox_pair import Sandbox
from tests.badinput.conftest import (
    Expect,
    Verdict,
    World,
    file_hashes,
    ids,
    run_bridge,
    sandbox_world,
    unique_ids,
)

Edit = Callable[[str, Path, Sandbox], str | bytes]


def _section(lines: list[str], name: str) -> tuple[int, int]:
    start = lines.index(f"[{name}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    return start, end


def set_key(section: str, key: str, raw: str | Callable[[Sandbox], str]) -> Edit:
    """`key = raw` in `[section]`, replacing the key's line or added under the header."""

    def edit(text: str, _folder: Path, sandbox: Sandbox) -> str:
        value = raw(sandbox) if callable(raw) else raw
        lines = text.split("\n")
        start, end = _section(lines, section)
        for index in range(start + 1, end):
            if lines[index].split("=")[0].strip() == key:
                lines[index] = f"{key} = {value}"
                return "\n".join(lines)
        lines.insert(start + 1, f"{key} = {value}")
        return "\n".join(lines)

    return edit


def drop_key(section: str, key: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        lines = text.split("\n")
        start, end = _section(lines, section)
        kept = [
            line
            for i, line in enumerate(lines)
            if not (start < i < end and line.split("=")[0].strip() == key)
        ]
        return "\n".join(kept)

    return edit


def then(*edits: Edit) -> Edit:
    def edit(text: str, folder: Path, sandbox: Sandbox) -> str | bytes:
        value: str | bytes = text
        for step in edits:
            assert isinstance(value, str)
            value = step(value, folder, sandbox)
        return value

    return edit


def secret_file(name: str, content: bytes | None) -> Edit:
    """Write `secrets/NAME` (a folder when `content` is None); the text is unchanged."""

    def edit(text: str, folder: Path, _sandbox: Sandbox) -> str:
        path = folder / "secrets" / name
        if content is None:
            path.mkdir()
        else:
            path.write_bytes(content)
            path.chmod(0o600)
        return text

    return edit


def whole(content: str | bytes) -> Edit:
    return lambda _text, _folder, _sandbox: content


def without_section(name: str) -> Edit:
    def edit(text: str, _folder: Path, _sandbox: Sandbox) -> str:
        lines = text.split("\n")
        start, end = _section(lines, name)
        return "\n".join(lines[:start] + lines[end:])

    return edit


def zd_url(tail: str) -> Callable[[Sandbox], str]:
    return lambda sandbox: f'"{sandbox.zendesk.base_url}{tail}"'


def zd_port(sandbox: Sandbox) -> int:
    return int(sandbox.zendesk.base_url.rsplit(":", 1)[1].split("/")[0])


@dataclass(frozen=True)
class ConfigCase:
    id: str
    edit: Edit
    words: tuple[str, ...]
    #: what must appear nowhere in the output (a secret written where it does not belong)
    absent: tuple[str, ...] = ()
    #: the path given to --config, from the case's folder (default: its bridge.toml)
    config: str = "bridge.toml"


CASES = unique_ids(
    [
        # --- wrong types and out-of-range numbers -------------------------------------
        ConfigCase(
            "direction-is-a-number",
            set_key("sync", "direction", "7"),
            ("sync.direction", "string"),
        ),
        ConfigCase(
            "max-purges-negative",
            set_key("sync", "max_purges_per_run", "-1"),
            ("sync.max_purges_per_run", "negative"),
        ),
        ConfigCase(
            "lease-seconds-beyond-64-bit",
            set_key("sync", "lease_seconds", "99999999999999999999"),
            ("sync.lease_seconds", "at most"),
        ),
        ConfigCase(
            "requests-per-second-nan",
            set_key("superoffice", "requests_per_second", "nan"),
            ("superoffice.requests_per_second", "greater than 0"),
        ),
        # --- unknown keys and sections --------------------------------------------------
        ConfigCase(
            "unknown-key-typo",
            set_key("sync", "max_purge_per_run", "5"),
            ("sync.max_purge_per_run", "unknown key", "max_purges_per_run"),
        ),
        ConfigCase(
            "unknown-section",
            lambda text, _f, _s: text + '\n[synk]\ndirection = "both"\n',
            ("synk", "unknown section"),
        ),
        # --- URLs ---------------------------------------------------------------------
        ConfigCase(
            "zendesk-http-to-a-remote-host",
            set_key("zendesk", "base_url", '"http://example.invalid"'),
            ("zendesk.base_url", "https"),
        ),
        ConfigCase(
            "zendesk-http-to-0.0.0.0",
            set_key("zendesk", "base_url", lambda s: f'"http://0.0.0.0:{zd_port(s)}"'),
            ("zendesk.base_url", "https"),
        ),
        ConfigCase(
            "superoffice-http-to-a-localhost-lookalike",
            set_key("superoffice", "base_url", '"http://localhost.example.invalid/Cust12345"'),
            ("superoffice.base_url", "https"),
        ),
        ConfigCase(
            "zendesk-url-with-credentials",
            set_key(
                "zendesk",
                "base_url",
                lambda s: f'"http://admin:hunter2-badinput@127.0.0.1:{zd_port(s)}"',
            ),
            ("zendesk.base_url", "credentials"),
            absent=("hunter2-badinput",),
        ),
        ConfigCase(
            "zendesk-url-with-query-string",
            set_key("zendesk", "base_url", zd_url("?locale=en")),
            ("zendesk.base_url", "query"),
        ),
        ConfigCase(
            "zendesk-url-with-api-path",
            set_key("zendesk", "base_url", zd_url("/api/v2")),
            ("zendesk.base_url", "/api/v2"),
        ),
        # --- secrets ------------------------------------------------------------------
        ConfigCase(
            "secret-file-missing",
            set_key("zendesk", "token_file", '"secrets/nope.token"'),
            ("zendesk.token_file", "nope.token"),
        ),
        ConfigCase(
            "secret-file-empty",
            then(
                secret_file("empty.token", b""),
                set_key("zendesk", "token_file", '"secrets/empty.token"'),
            ),
            ("zendesk.token_file", "empty"),
        ),
        ConfigCase(
            "secret-file-is-a-folder",
            then(
                secret_file("ticket.d", None),
                set_key("superoffice", "ticket_file", '"secrets/ticket.d"'),
            ),
            ("superoffice.ticket_file", "directory"),
        ),
        ConfigCase(
            "secret-file-not-utf8",
            then(
                secret_file("app.bin", b"\xff\xfe\x00tok"),
                set_key("superoffice", "app_token_file", '"secrets/app.bin"'),
            ),
            ("superoffice.app_token_file", "UTF-8"),
        ),
        ConfigCase(
            "secret-env-and-file-both-given",
            set_key("zendesk", "token_env", '"ZENDESK_API_TOKEN"'),
            ("zendesk.token_env", "not both"),
        ),
        ConfigCase(
            "secret-env-variable-not-set",
            lambda text, f, s: set_key("zendesk", "token_env", '"BADINPUT_UNSET_TOKEN"')(
                drop_key("zendesk", "token_file")(text), f, s
            ),
            ("zendesk.token_env", "BADINPUT_UNSET_TOKEN"),
        ),
        ConfigCase(
            "secret-pasted-as-env-name",
            lambda text, f, s: set_key("zendesk", "token_env", '"sk-live 9f8e7d6c5b4a"')(
                drop_key("zendesk", "token_file")(text), f, s
            ),
            ("zendesk.token_env", "environment variable"),
            absent=("9f8e7d6c5b4a",),
        ),
        ConfigCase(
            "secret-written-in-the-config",
            set_key("superoffice", "ticket", '"7T:pasted-ticket-value"'),
            ("superoffice.ticket", "ticket_env"),
            absent=("pasted-ticket-value",),
        ),
        ConfigCase(
            "ledger-url-with-password",
            set_key("ledger", "url", '"postgresql://bridge:s3cr3t-pw@db.example.invalid/bridge"'),
            ("ledger.url", "password"),
            absent=("s3cr3t-pw",),
        ),
        # --- the file itself ----------------------------------------------------------
        ConfigCase(
            "toml-unclosed-string",
            whole('[ledger]\nurl = "sqlite:///bridge.db\n'),
            ("bridge.toml:2:", "invalid TOML"),
        ),
        ConfigCase(
            "empty-file", whole(""), ("missing section [zendesk]", "missing section [superoffice]")
        ),
        ConfigCase("not-utf8", whole(b'[logging]\nlevel = "caf\xe9"\n'), ("bridge.toml", "UTF-8")),
        ConfigCase("config-is-a-folder", whole(""), ("--config", "directory"), config="."),
        ConfigCase(
            "config-missing", whole(""), ("no config file", "nope.toml"), config="nope.toml"
        ),
    ]
)

COMMANDS = [("check", "--offline"), ("sync",)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with sandbox_world(tmp_path_factory.mktemp("config") / "bridge") as world:
        world.link(3)
        yield world


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_config_is_refused(
    world: World, case: ConfigCase, command: tuple[str, ...], tmp_path: Path
) -> None:
    folder = tmp_path / "bridge"
    config = world.sandbox.write_config(folder)
    changed = case.edit(config.read_text(encoding="utf-8"), folder, world.sandbox)
    if isinstance(changed, bytes):
        config.write_bytes(changed)
    else:
        config.write_text(changed, encoding="utf-8")
    before = file_hashes(folder)
    world.reset_counters()
    outcome = run_bridge(folder / case.config, *command, cwd=folder, timeout=30)
    expect = Expect(code=2, words=case.words, in_block=True, problem_lines=True, absent=case.absent)
    verdict = Verdict(outcome, expect)
    verdict.exit_code()
    verdict.message()
    verdict.no_writes(world.sandbox)
    verdict.same_files(before, file_hashes(folder))
    verdict.conclude()
