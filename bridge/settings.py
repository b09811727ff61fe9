"""Reading one TOML table of `bridge.toml`: typed getters that collect problems.

Every section reader (bridge's own in `bridge.config`, each vendor's in its package) reads
through a `Table`, so that every problem is reported the same way, `file:key: what is
wrong`, all at once, and unknown keys are errors (a typo must never fall back silently to
a default that may purge more than intended).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from bridge.errors import BridgeError
from bridge.secrets import Secret

__all__ = [
    "LOOPBACK",
    "MISSING",
    "ConfigError",
    "Problems",
    "Table",
    "VendorSettings",
    "suggest",
    "type_name",
    "url_problem",
]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(BridgeError):
    """The config is unusable; `problems` holds one `file:key: what is wrong` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class VendorSettings(Protocol):
    """What bridge reads of any vendor's parsed section (its own fields are its business)."""

    @property
    def base_url(self) -> str: ...

    @property
    def bridge_actor_id(self) -> int | None:
        """The vendor's id of bridge's own API user (None: not configured)."""
        ...

    @property
    def webhook_secret(self) -> Secret | None:
        """What signs the vendor's webhooks to `bridge serve` (None: not used)."""
        ...

    def secrets(self) -> dict[str, Secret]:
        """Secrets this auth mode uses, by base key name (`token` for `token_env`)."""
        ...

    def file_problems(self) -> list[tuple[str, str]]:
        """(key, problem) for files the section names besides secrets, read now."""
        ...


MISSING: Final = object()


def type_name(value: object) -> str:
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


def suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""


class Problems:
    def __init__(self, label: str) -> None:
        self.label = label
        self.lines: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.lines.append(f"{self.label}:{key}: {message}" if key else f"{self.label}: {message}")


class Table:
    """One TOML table: typed getters that record problems and the keys they consumed."""

    def __init__(self, problems: Problems, name: str, data: Mapping[str, Any], folder: Path):
        self.problems = problems
        self.name = name
        self.data = data
        self.folder = folder
        self.known: set[str] = set()
        #: the secret base names this section takes (`token` for `token_env`/`token_file`)
        self.secret_bases: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.name}.{key}"

    def bad(self, key: str, message: str) -> None:
        self.problems.add(self.key(key), message)

    def raw(self, key: str) -> Any:
        self.known.add(key)
        return self.data.get(key, MISSING)

    def present(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, default: Any = MISSING) -> Any:
        value = self.raw(key)
        if value is MISSING:
            if default is MISSING:
                self.bad(key, "missing (required)")
                return None
            return default
        if not isinstance(value, str):
            self.bad(key, f"must be a string, not {type_name(value)}")
            return None
        if not value.strip():
            self.bad(key, "must not be empty")
            return None
        return value.strip()

    def choice(self, key: str, options: tuple[str, ...], default: Any = MISSING) -> Any:
        value = self.text(key, default)
        if value is None or value is default:
            return value
        if value not in options:
            listed = ", ".join(f'"{o}"' for o in options)
            self.bad(key, f'must be one of {listed}, not "{value}"{suggest(value, options)}')
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.bad(key, f"must be true or false, not {type_name(value)}")
            return default
        return value

    def integer(self, key: str, default: int, minimum: int, maximum: int = 2**31 - 1) -> int:
        value = self.raw(key)
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                self.bad(key, "must be a whole number without a decimal point")
            else:
                self.bad(key, f"must be a whole number, not {type_name(value)}")
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
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.bad(key, f"must be a number, not {type_name(value)}")
            return default
        if not math.isfinite(value) or value <= 0:
            self.bad(key, "must be a number greater than 0")
            return default
        if value > maximum:
            self.bad(key, f"must be at most {maximum:g} (is {value:g})")
            return default
        return float(value)

    def url(self, key: str, default: Any = MISSING, *, forbidden_tail: str = "") -> Any:
        value = self.text(key, default)
        if value is None or value is default:
            return value
        message = url_problem(value, forbidden_tail)
        if message:
            self.bad(key, message)
            return None
        return str(value).rstrip("/")

    def path(self, key: str) -> Path | None:
        value = self.text(key, None)
        return None if value is None else self.folder / Path(value).expanduser()

    def secret(self, base: str, *, required: bool) -> Secret | None:
        """`base_env` xor `base_file`: a Secret naming where the value lives."""
        self.secret_bases.add(base)
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
                self.bad(env_key, f"must be a string, not {type_name(name)}")
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
            elif key in self.secret_bases and f"{key}_env" in self.known:
                self.bad(
                    key,
                    f"unknown key: secrets are never written in the config; "
                    f"name them with {key}_env or {key}_file",
                )
            else:
                self.bad(key, "unknown key" + suggest(key, sorted(self.known)))


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def url_problem(value: str, forbidden_tail: str) -> str | None:
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
    if parts.scheme.lower() == "http" and parts.hostname.lower() not in LOOPBACK:
        return "must be https (plain http is only for 127.0.0.1, ::1 or localhost)"
    if parts.query or parts.fragment:
        return "must not have a query string or fragment"
    if forbidden_tail and parts.path.rstrip("/").lower().endswith(forbidden_tail):
        return f"must not end with {forbidden_tail} (bridge adds it)"
    del port
    return None
