"""`[ledger] password_file` / `password_env`: the PostgreSQL ledger's password named the
way every other secret is, given to libpq as PGPASSWORD (never the URL), never printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.secrets import Secret
from tests.postgres.cluster import Cluster
from tests.sandbox_world import running_sandbox


def _bridge(config: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "--config", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _without_pg_password() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGPASSFILE")}


def _config(written: Path, folder: Path, ledger: str) -> Path:
    """The sandbox's config with its `[ledger]` table replaced by `ledger`."""
    text = written.read_text(encoding="utf-8")
    line = 'url = "sqlite:///bridge.db"\n'
    assert line in text
    folder.mkdir()
    (folder / "secrets").symlink_to(written.parent / "secrets")
    path = folder / "bridge.toml"
    path.write_text(text.replace(line, ledger), encoding="utf-8")
    return path


def test_the_ledger_password_comes_from_its_file_and_is_never_shown(
    pg_cluster: Cluster, postgres_url: str, tmp_path: Path
) -> None:
    secret = tmp_path / "pg_password"
    secret.write_text(pg_cluster.password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    env = _without_pg_password()
    with running_sandbox(50.0) as sandbox:
        written = sandbox.write_config(tmp_path / "sandbox")
        ledger = f'url = "{postgres_url}"\npassword_file = "{secret}"\n'
        config = _config(written, tmp_path / "pg", ledger)
        assert load_config(config).ledger_password == Secret.from_file(secret)
        made = _bridge(config, "init", "--ledger-only", env=env)
        assert made.returncode == 0, made.stderr
        shown = _bridge(config, "status", "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        assert pg_cluster.password not in shown.stdout + shown.stderr
        # without it libpq has no password: the same command cannot connect
        bare = _config(written, tmp_path / "bare", f'url = "{postgres_url}"\n')
        refused = _bridge(bare, "status", env=env)
        assert refused.returncode == 2
        # a wrong one is refused by the server, and not echoed
        secret.write_text("not-the-password-4711\n", encoding="utf-8")
        wrong = _bridge(config, "status", env=env)
        assert wrong.returncode == 2
        assert "not-the-password-4711" not in wrong.stdout + wrong.stderr
        secret.unlink()
        missing = _bridge(config, "status", env=env)
        assert missing.returncode == 2
        assert str(secret) in missing.stderr


@pytest.mark.parametrize(
    ("ledger", "problem"),
    [
        (
            'url = "postgresql+psycopg://bridge@db/bridge"\n'
            'password_env = "PG_PW"\npassword_file = "/run/secrets/pg"\n',
            "ledger.password_env: give either password_env or password_file, not both",
        ),
        (
            'url = "sqlite:///bridge.db"\npassword_file = "/run/secrets/pg"\n',
            "ledger.password_file: is for a PostgreSQL ledger; SQLite has none",
        ),
        (
            'url = "postgresql+psycopg://bridge@db/bridge"\npassword = "hunter2"\n',
            "ledger.password: unknown key: secrets are never written in the config",
        ),
    ],
)
def test_the_ledger_password_keys_refuse_what_cannot_work(
    ledger: str, problem: str, tmp_path: Path
) -> None:
    with running_sandbox(50.0) as sandbox:
        written = sandbox.write_config(tmp_path / "sandbox")
        config = _config(written, tmp_path / "c", ledger)
        checked = _bridge(config, "check", "--offline", env=_without_pg_password())
    assert checked.returncode == 2
    assert problem in checked.stderr, checked.stderr
    assert "hunter2" not in checked.stderr
