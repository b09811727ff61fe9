"""Logging: JSON or console output, and secrets masked wherever they appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from requests.structures import CaseInsensitiveDict

from bridge import secrets
from bridge.logging import (
    REDACTED,
    configure_logging,
    is_sensitive_key,
    redact_secrets,
    redact_text,
    redact_value,
)
from bridge.secrets import Secret, register_secret_value

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXBhcnQ"


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    secrets._forget_registered_values()
    yield
    secrets._forget_registered_values()
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "bridge"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def process(**event: Any) -> dict[str, Any]:
    return dict(redact_secrets(None, "info", event))


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "authorization",
        "Authorization",
        "Proxy-Authorization",
        "cookie",
        "Set-Cookie",
        "password",
        "secret",
        "token",
        "api_token",
        "access_token",
        "refresh_token",
        "app_token",
        "SO-AppToken",
        "SignedSystemToken",
        "client_secret",
        "private_key",
        "oauth_token",
        "zendesk_secret",
        "db_password",
        "X-API-KEY",
    ],
)
def test_sensitive_keys_are_masked(key: str) -> None:
    assert is_sensitive_key(key)
    assert process(event="x", **{key: "plain-looking value"})[key] == REDACTED


@pytest.mark.parametrize(
    "key", ["ticket_id", "id", "ticket", "ids", "token_count", "link_id", "status", "job_id"]
)
def test_ids_and_ordinary_keys_are_kept(key: str) -> None:
    assert not is_sensitive_key(key)
    assert process(event="x", **{key: 123})[key] == 123


def test_nested_structures_are_masked_by_key() -> None:
    event = process(
        event="request",
        request={
            "headers": {"Authorization": "x", "Accept": "application/json"},
            "body": [{"password": "pw", "ticket_id": 7}, ("keep", {"api_token": "t"})],
        },
        header_pairs=[("Authorization", "anything"), ("Accept", "json")],
    )
    assert event["request"] == {
        "headers": {"Authorization": REDACTED, "Accept": "application/json"},
        "body": [{"password": REDACTED, "ticket_id": 7}, ("keep", {"api_token": REDACTED})],
    }
    assert event["header_pairs"] == [("Authorization", REDACTED), ("Accept", "json")]


def test_header_mappings_are_masked() -> None:
    headers = CaseInsensitiveDict({"SO-AppToken": "app", "authorization": "SOTicket 7T:x"})
    headers["Content-Type"] = "json"
    event = process(event="call", headers=headers)
    assert event["headers"] == {
        "SO-AppToken": REDACTED,
        "authorization": REDACTED,
        "Content-Type": "json",
    }


# --- patterns inside strings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", f"Authorization: {REDACTED}"),
        ('{"Authorization": "Bearer abc.def"}', f'{{"Authorization": "{REDACTED}"}}'),
        ("sent Basic dXNlcjpwYXNzd29yZA== ok", f"sent Basic {REDACTED} ok"),
        ("Bearer 0123456789abcdef", f"Bearer {REDACTED}"),
        ("bearer sandbox-bearer", f"bearer {REDACTED}"),
        ("SOTicket 7T:1234abcxyzExample==", f"SOTicket {REDACTED}"),
        ("user jdoe@example.com/token:6wiIBWbGkBMo1", f"user jdoe@example.com/token:{REDACTED}"),
        (f"jwt {JWT} end", f"jwt {REDACTED} end"),
        (f"token {JWT}", f"token {REDACTED}"),
        ("GET /x?access_token=abc123&page=2", f"GET /x?access_token={REDACTED}&page=2"),
        ('{"password": "p w", "ticket_id": 5}', f'{{"password": "{REDACTED}", "ticket_id": 5}}'),
        ("client_secret='x y'", f"client_secret='{REDACTED}'"),
        ("Cookie: a=b; c=d", f"Cookie: {REDACTED}"),
        ("https://admin:hunter22@host/x", f"https://admin:{REDACTED}@host/x"),
        ("SignedSystemToken=abc.202601011200.sig", f"SignedSystemToken={REDACTED}"),
    ],
)
def test_patterns_in_strings_are_masked(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "basic authentication failed",
        "use a bearer token",
        "ticket 123 soft_deleted on zendesk",
        "token_env names the variable",
        "superoffice-to-zendesk",
    ],
)
def test_ordinary_prose_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_patterns_apply_in_values_nested_anywhere() -> None:
    event = process(
        event="Authorization: Bearer abcdef123456",
        calls=[{"url": "https://h/x?token=zzz"}, ("msg", f"got {JWT}")],
    )
    assert event["event"] == f"Authorization: {REDACTED}"
    assert event["calls"] == [{"url": f"https://h/x?token={REDACTED}"}, ("msg", f"got {REDACTED}")]


# --- registered secrets --------------------------------------------------------------------------


def test_revealed_secrets_are_masked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "lowercaseplainvalue")
    assert redact_text("x lowercaseplainvalue y") == "x lowercaseplainvalue y"
    Secret.from_env("BRIDGE_TEST_TOKEN").reveal()
    event = process(
        event="failed with lowercaseplainvalue",
        detail={"nested": ["prefix-lowercaseplainvalue-suffix"]},
        url="https://h/?q=lowercaseplainvalue",
    )
    assert event == {
        "event": f"failed with {REDACTED}",
        "detail": {"nested": [f"prefix-{REDACTED}-suffix"]},
        "url": f"https://h/?q={REDACTED}",
    }


def test_longest_registered_value_wins() -> None:
    register_secret_value("abcd")
    register_secret_value("abcdefgh")
    assert redact_text("[abcdefgh]") == f"[{REDACTED}]"


def test_objects_whose_repr_leaks_are_masked() -> None:
    register_secret_value("leaky-value")

    class Holder:
        def __repr__(self) -> str:
            return "Holder(leaky-value)"

    safe = object()
    assert redact_value(Holder()) == f"Holder({REDACTED})"
    assert redact_value(safe) is safe
    assert redact_value(b"Authorization: Basic dXNlcjpwYXNz") == f"Authorization: {REDACTED}"
    assert redact_value(b"plain") == b"plain"
    assert redact_value(RuntimeError("password=abc")) == f"RuntimeError('password={REDACTED}')"


def test_deep_or_cyclic_structures_do_not_break_logging() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert "[TOO DEEP]" in repr(redact_value(loop))


# --- rendering -----------------------------------------------------------------------------------


def test_json_lines_with_iso_utc_timestamp() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    structlog.get_logger("t").info("hello", ticket_id=5, api_token="x")
    structlog.get_logger("t").debug("hidden")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "hello"
    assert record["level"] == "info"
    assert record["ticket_id"] == 5
    assert record["api_token"] == REDACTED
    assert record["timestamp"].endswith("Z")
    assert record["timestamp"][10] == "T"


def test_console_format_is_readable_not_json() -> None:
    stream = io.StringIO()
    configure_logging("console", "debug", stream)
    structlog.get_logger("t").debug("hello", ticket_id=5, password="pw")
    out = stream.getvalue()
    assert "hello" in out
    assert "ticket_id=5" in out
    assert f"password={REDACTED}" in out
    assert "\x1b[" not in out  # no colours when the stream is not a terminal
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_auto_is_json_when_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("auto", "info", stream)
    structlog.get_logger().info("hello")
    assert json.loads(stream.getvalue())["event"] == "hello"


def test_auto_is_console_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    stream = TtyStream()
    configure_logging("auto", "info", stream)
    structlog.get_logger().info("hello", n=1)
    out = stream.getvalue()
    assert "hello" in out
    assert "n=1" in out
    assert not out.lstrip().startswith("{")


def test_json_forced_even_on_a_terminal() -> None:
    stream = TtyStream()
    configure_logging("json", "info", stream)
    structlog.get_logger().info("hello")
    assert json.loads(stream.getvalue())["event"] == "hello"


@pytest.mark.parametrize(("fmt", "level"), [("xml", "info"), ("json", "verbose")])
def test_unknown_format_or_level_is_rejected(fmt: str, level: str) -> None:
    with pytest.raises(ValueError, match="must be one of"):
        configure_logging(fmt, level, io.StringIO())


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_exception_text_is_redacted(fmt: str) -> None:
    register_secret_value("registered-in-traceback")
    stream = io.StringIO()
    configure_logging(fmt, "info", stream)
    try:
        raise RuntimeError(f"SOTicket 7T:abc== and registered-in-traceback and {JWT}")
    except RuntimeError:
        structlog.get_logger().exception("call failed")
    out = stream.getvalue()
    assert "RuntimeError" in out
    assert "Traceback" in out
    assert "7T:abc==" not in out
    assert "registered-in-traceback" not in out
    assert JWT not in out
    assert f"SOTicket {REDACTED}" in out


def test_exception_passed_as_exc_info_object_is_redacted() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    error = ValueError("Authorization: Basic dXNlcjpwYXNzd29yZA==")
    structlog.get_logger().error("failed", exc_info=error)
    record = json.loads(stream.getvalue())
    assert "dXNlcjpwYXNzd29yZA==" not in record["exception"]
    assert f"Authorization: {REDACTED}" in record["exception"]


def test_stdlib_loggers_share_format_and_redaction() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    logging.getLogger("urllib3.test").warning("sent %s", "Authorization: Bearer abcdef123456")
    logging.getLogger("urllib3.test").debug("hidden")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == f"sent Authorization: {REDACTED}"
    assert record["logger"] == "urllib3.test"
    assert record["level"] == "warning"


def test_reconfiguring_does_not_duplicate_stdlib_output() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", first)
    configure_logging("json", "info", second)
    logging.getLogger("x").warning("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1


@pytest.mark.timeout(30)  # a generous guard: the quadratic regex this replaced took minutes
@pytest.mark.parametrize("piece", ["a", "x@", "a_", "a=", "eyJa", "Basic ", "a://u:"])
def test_long_strings_are_redacted_without_backtracking_blowup(piece: str) -> None:
    text = piece * (200_000 // len(piece))
    assert len(redact_text(text)) > 0
