"""Secret: names where a value lives, reads it at use time, never shows it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import secrets
from bridge.secrets import Secret, SecretError, register_secret_value, registered_secret_values

VALUE = "s3cr3t-Value-42"


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    secrets._forget_registered_values()
    yield
    secrets._forget_registered_values()


def registered() -> frozenset[str]:
    return registered_secret_values()[1]


def test_env_secret_reveals_the_current_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", VALUE)
    secret = Secret.from_env("BRIDGE_TEST_TOKEN")
    assert secret.source == "env:BRIDGE_TEST_TOKEN"
    assert secret.reveal() == VALUE
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "rotated-value")  # read at use time, not cached
    assert secret.reveal() == "rotated-value"


def test_repr_and_str_never_show_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", VALUE)
    secret = Secret.from_env("BRIDGE_TEST_TOKEN")
    secret.reveal()
    assert repr(secret) == "Secret(env:BRIDGE_TEST_TOKEN)"
    assert str(secret) == "env:BRIDGE_TEST_TOKEN"
    assert VALUE not in repr(secret) + str(secret) + f"{secret!r} {secret}"
    assert VALUE not in repr({"k": secret}) + repr([secret])


def test_secret_is_frozen() -> None:
    secret = Secret.from_env("X")
    with pytest.raises(dataclasses.FrozenInstanceError):
        secret.name = "Y"  # type: ignore[misc]


def test_missing_env_var_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGE_TEST_MISSING", raising=False)
    secret = Secret.from_env("BRIDGE_TEST_MISSING")
    with pytest.raises(SecretError) as info:
        secret.reveal()
    assert str(info.value) == "environment variable BRIDGE_TEST_MISSING is not set"
    assert secret.problem() == "environment variable BRIDGE_TEST_MISSING is not set"


def test_empty_env_var_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_EMPTY", "")
    with pytest.raises(SecretError, match=r"^environment variable BRIDGE_TEST_EMPTY is empty$"):
        Secret.from_env("BRIDGE_TEST_EMPTY").reveal()


def test_file_secret_drops_the_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(VALUE + "\n", encoding="utf-8")
    secret = Secret.from_file(path)
    assert secret.source == f"file:{path}"
    assert secret.reveal() == VALUE
    assert secret.problem() is None
    path.write_text("next-value\r\n", encoding="utf-8")
    assert secret.reveal() == "next-value"


def test_file_errors_name_the_file_not_the_value(tmp_path: Path) -> None:
    missing = Secret.from_file(tmp_path / "nope")
    assert missing.problem() == (
        f"cannot read secret file {tmp_path / 'nope'} (No such file or directory)"
    )
    assert Secret.from_file(tmp_path).problem() == (
        f"cannot read secret file {tmp_path} (it is a directory)"
    )
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    assert Secret.from_file(empty).problem() == f"secret file {empty} is empty"
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" + VALUE.encode())
    message = Secret.from_file(binary).problem()
    assert message == f"secret file {binary} is not UTF-8 text"


def test_file_path_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        Secret.from_file("relative/token")
    with pytest.raises(ValueError, match="unknown secret kind"):
        Secret("vault", "x")  # type: ignore[arg-type]


def test_reveal_registers_the_value_for_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "a b/c")
    assert "a b/c" not in registered()
    Secret.from_env("BRIDGE_TEST_TOKEN").reveal()
    assert {"a b/c", "a%20b%2Fc", "a%20b/c"} <= registered()


def test_failed_reveal_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGE_TEST_MISSING", raising=False)
    generation, _ = registered_secret_values()
    assert Secret.from_env("BRIDGE_TEST_MISSING").problem() is not None
    assert registered_secret_values() == (generation, frozenset())


def test_short_values_are_not_registered() -> None:
    register_secret_value("abc")
    assert registered() == frozenset()
    register_secret_value("abcd")
    assert "abcd" in registered()


def test_multiline_values_register_their_lines() -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
        "BKcwggSjAgEAAoIBAQ\n-----END PRIVATE KEY-----\n"
    )
    register_secret_value(pem)
    values = registered()
    assert pem in values
    assert {"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "BKcwggSjAgEAAoIBAQ"} <= values
    assert "-----BEGIN PRIVATE KEY-----" not in values


def test_generation_changes_only_when_values_are_new() -> None:
    register_secret_value("first-value")
    generation, _ = registered_secret_values()
    register_secret_value("first-value")
    assert registered_secret_values()[0] == generation
    register_secret_value("second-value")
    assert registered_secret_values()[0] != generation
