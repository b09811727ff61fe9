"""Secrets that live outside the config file, read at the moment they are used.

A `Secret` names where a value lives (an environment variable or a file), never the value, so
that configs, reprs, errors and logs can mention it freely. `reveal()` reads the value each
time (rotation works without a restart) and registers it with the redaction registry, so the
log processor in `bridge.logging` masks it wherever it later appears.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from bridge.errors import BridgeError

__all__ = [
    "MIN_REGISTERED_LENGTH",
    "Secret",
    "SecretError",
    "SecretKind",
    "register_secret_value",
    "registered_secret_values",
]

SecretKind = Literal["env", "file"]

#: Values shorter than this are not registered for masking: masking "ab" everywhere would
#: shred every log line while protecting nothing a guesser could not find anyway.
MIN_REGISTERED_LENGTH = 4

_lock = threading.Lock()
_registered: set[str] = set()
_generation = 0


class SecretError(BridgeError):
    """A secret could not be read; the message names the variable or file, never the value."""


def register_secret_value(value: str) -> None:
    """Have the log redactor mask `value` from now on.

    Adapters call this for credentials they derive at run time (a Basic header, a ticket from
    the SuperOffice system-user exchange); `Secret.reveal()` calls it for what it reads.
    """
    global _generation
    candidates = {value, quote(value, safe=""), quote(value)}
    if "\n" in value:  # a PEM or similar: also mask its body lines if logged piecemeal
        candidates.update(
            line.strip() for line in value.splitlines() if not line.strip().startswith("-----")
        )
    fresh = {c for c in candidates if len(c) >= MIN_REGISTERED_LENGTH}
    with _lock:
        if not fresh <= _registered:
            _registered.update(fresh)
            _generation += 1


def registered_secret_values() -> tuple[int, frozenset[str]]:
    """The registered values and a generation number that changes whenever they change."""
    with _lock:
        return _generation, frozenset(_registered)


def _forget_registered_values() -> None:
    """Tests only: start from an empty registry."""
    global _generation
    with _lock:
        _registered.clear()
        _generation += 1


@dataclass(frozen=True, slots=True, repr=False)
class Secret:
    """Where a secret lives: kind "env" with the variable name, or "file" with an absolute path."""

    kind: SecretKind
    name: str

    def __post_init__(self) -> None:
        if self.kind not in ("env", "file"):
            raise ValueError(f"unknown secret kind {self.kind!r}")
        if not self.name:
            raise ValueError("a secret needs a variable name or a file path")
        if self.kind == "file" and not Path(self.name).is_absolute():
            raise ValueError(f"secret file path must be absolute: {self.name}")

    @classmethod
    def from_env(cls, variable: str) -> Secret:
        return cls("env", variable)

    @classmethod
    def from_file(cls, path: Path | str) -> Secret:
        return cls("file", str(Path(path)))

    @property
    def source(self) -> str:
        """`env:NAME` or `file:/abs/path`: safe to show anywhere."""
        return f"{self.kind}:{self.name}"

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    def __str__(self) -> str:
        return self.source

    def describe(self) -> str:
        """Human wording used in error messages."""
        if self.kind == "env":
            return f"environment variable {self.name}"
        return f"secret file {self.name}"

    def reveal(self) -> str:
        """Read the value now. Raises `SecretError` if it is missing, unreadable or empty."""
        value = self._read()
        if not value:
            raise SecretError(f"{self.describe()} is empty")
        register_secret_value(value)
        return value

    def warning(self) -> str | None:
        """A secret file others may read: allowed, but worth a word (`bridge check`)."""
        if self.kind != "file":
            return None
        try:
            mode = os.stat(self.name).st_mode
        except OSError:
            return None
        if mode & 0o077:
            return (
                f"secret file {self.name} is readable by others (mode {mode & 0o777:o}): "
                f"chmod 600 {self.name}"
            )
        return None

    def problem(self) -> str | None:
        """Why `reveal()` would fail, or None when it would succeed."""
        try:
            self.reveal()
        except SecretError as exc:
            return str(exc)
        return None

    def _read(self) -> str:
        if self.kind == "env":
            value = os.environ.get(self.name)
            if value is None:
                raise SecretError(f"environment variable {self.name} is not set")
            return value
        try:
            raw = Path(self.name).read_bytes()
        except IsADirectoryError:
            raise SecretError(f"cannot read secret file {self.name} (it is a directory)") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SecretError(f"cannot read secret file {self.name} ({reason})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"secret file {self.name} is not UTF-8 text") from None
        # editors and `echo` leave a trailing newline that is never part of a token
        return text.rstrip("\r\n")
