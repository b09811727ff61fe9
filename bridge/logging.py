"""Structured logging: JSON lines for machines, readable lines for people, secrets masked.

Redaction is the last processor before rendering, after exceptions and stacks are turned into
text, so nothing reaches the stream without passing it. Third-party libraries that log through
the standard library (urllib3, SQLAlchemy) go through the same redaction and renderer.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any, Literal, TextIO

from bridge.lazy import hidden_modules

# structlog imports rich (when installed) for its own exception and locals rendering;
# bridge renders exceptions itself (`format_exc_info`, then the redaction), so it does not
# load rich here: rich is for progress bars on a terminal (`bridge.cli.progress`)
with hidden_modules("rich"):
    import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from bridge.secrets import registered_secret_values

__all__ = [
    "LEVELS",
    "LOG_FORMATS",
    "REDACTED",
    "LogFormat",
    "choose_logging",
    "configure_logging",
    "is_sensitive_key",
    "redact_secrets",
    "redact_text",
    "redact_value",
]

LogFormat = Literal["auto", "json", "console"]
LOG_FORMATS: tuple[str, ...] = ("auto", "json", "console")
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
REDACTED = "[REDACTED]"
_MAX_DEPTH = 12

# --- keys --------------------------------------------------------------------------------------

_SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "password",
        "passwd",
        "secret",
        "token",
        "api_token",
        "access_token",
        "refresh_token",
        "id_token",
        "app_token",
        "apptoken",
        "so_apptoken",
        "applicationtoken",
        "application_token",
        "signedsystemtoken",
        "signed_system_token",
        "system_user_token",
        "soticket",
        "client_secret",
        "private_key",
        "api_key",
        "apikey",
        "x_api_key",
        "jwt",
        "bearer",
        "credentials",
    }
)
_SENSITIVE_SUFFIXES = ("_token", "_secret", "_password")


def _normalise_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def is_sensitive_key(key: object) -> bool:
    """Whether a mapping key names a credential (`ticket_id` and other ids do not)."""
    if not isinstance(key, str):
        return False
    k = _normalise_key(key)
    return k in _SENSITIVE_KEYS or k.endswith(_SENSITIVE_SUFFIXES)


# --- patterns inside text ----------------------------------------------------------------------

_KEY_ALTERNATION = (
    r"(?:proxy[-_]authorization|authorization|set[-_]cookie|cookie|passwd|password|secret"
    r"|token|api[-_]?key|x[-_]api[-_]key|apptoken|so[-_]apptoken|applicationtoken|soticket"
    r"|signedsystemtoken|client[-_]secret|private[-_]key|jwt"
    r"|\w*_token|\w*_secret|\w*_password)"
)

# `Authorization: Basic abc`, `"authorization": "Bearer x"`: the whole credential, scheme included
_HEADER_VALUE = re.compile(
    r"(?i)(\b(?:proxy[-_])?authorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(?:basic|bearer|soticket|token|digest|negotiate)\s+)?[^\s\"',;}\]]+"
)
_COOKIE_VALUE = re.compile(r"(?i)(\b(?:set[-_])?cookie[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n]+")
# key=value, key: value, "key": "value" (query strings, JSON dumps, prose)
_KEY_VALUE = re.compile(
    r"(?i)(\b" + _KEY_ALTERNATION + r"[\"']?\s*[:=]\s*)"
    r"(?:\"(?!\[REDACTED\])[^\"]*\"|'(?!\[REDACTED\])[^']*'|(?![\"'\[])[^\s\"'&,;}\]]+)"
)
# `SOTicket 7T:abc==`: the word is distinctive enough to mask whatever follows
_SOTICKET = re.compile(r"(?i)(\bSOTicket\s+)(?!\[REDACTED\])\S+")
# `Basic <b64>` / `Bearer <token>`: only when the word after looks like a credential, so that
# prose such as "basic authentication" stays readable
_SCHEME_TOKEN = re.compile(r"(?i)(\b(?:basic|bearer)\s+)([A-Za-z0-9+/=._~-]{8,})")
# Zendesk API-token user name: `jdoe@example.com/token:6wiIB...`
# (anchored on "@" and kept to the domain, so long strings without one cost linear time)
_EMAIL_TOKEN = re.compile(r"(@[^\s/:\"'@]+/token:)[^\s\"'@]+")
# credentials inside a URL: `https://user:pass@host`
_URL_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s/:@\"']+:)[^\s/@\"']+(@)")
# JWTs (and any base64url JSON): header always starts with `{"` → `eyJ`
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*){0,2}")


def _looks_like_credential(word: str) -> bool:
    return any(c.isdigit() or c in "+/=-_.~" for c in word) or any(c.isupper() for c in word[1:])


def _mask_scheme(match: re.Match[str]) -> str:
    if _looks_like_credential(match.group(2)):
        return match.group(1) + REDACTED
    return match.group(0)


def _mask_key_value(match: re.Match[str]) -> str:
    value = match.group(0)[len(match.group(1)) :]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match.group(1)}{quote}{REDACTED}{quote}"


class _SecretValues:
    """Compiled alternation of the registered secret values, rebuilt when the registry grows."""

    def __init__(self) -> None:
        self._generation = -1
        self._pattern: re.Pattern[str] | None = None

    def pattern(self) -> re.Pattern[str] | None:
        generation, values = registered_secret_values()
        if generation != self._generation:
            ordered = sorted(values, key=len, reverse=True)  # longest first: no partial leaks
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
            self._generation = generation
        return self._pattern


_secret_values = _SecretValues()


def redact_text(text: str) -> str:
    """Mask registered secret values and credential patterns inside free text."""
    registered = _secret_values.pattern()
    if registered is not None:
        text = registered.sub(REDACTED, text)
    text = _HEADER_VALUE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _COOKIE_VALUE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _SOTICKET.sub(lambda m: m.group(1) + REDACTED, text)
    text = _SCHEME_TOKEN.sub(_mask_scheme, text)
    text = _EMAIL_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    text = _URL_USERINFO.sub(lambda m: m.group(1) + REDACTED + m.group(2), text)
    text = _JWT.sub(REDACTED, text)
    return _KEY_VALUE.sub(_mask_key_value, text)


_PLAIN = (int, float, bool, type(None))


def redact_value(value: Any, _depth: int = 0) -> Any:
    """Return `value` with secrets masked, recursing into mappings and sequences."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PLAIN):
        return value
    if _depth >= _MAX_DEPTH:
        return "[TOO DEEP]"
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if is_sensitive_key(k) else redact_value(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, tuple) and len(value) == 2 and is_sensitive_key(value[0]):
        # a header pair such as ("Authorization", "Basic ...")
        return (value[0], REDACTED)
    if isinstance(value, list | tuple | set | frozenset):
        items = [redact_value(v, _depth + 1) for v in value]
        return items if isinstance(value, list | set | frozenset) else tuple(items)
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", errors="replace")
        masked = redact_text(text)
        return value if masked == text else masked
    # anything else is rendered with repr()/str() later: mask that text if it would leak
    try:
        shown = repr(value)
        said = str(value)
    except Exception:  # a broken __repr__ must not break logging
        return f"<unrepresentable {type(value).__name__}>"
    masked = redact_text(shown)
    if masked != shown or redact_text(said) != said:
        return masked
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask credentials by key, by pattern and by registered value."""
    return {
        key: REDACTED if is_sensitive_key(key) else redact_value(value)
        for key, value in event_dict.items()
    }


# --- configuration -----------------------------------------------------------------------------


def _is_tty(stream: IO[str]) -> bool:
    isatty: Callable[[], bool] | None = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # closed or odd streams
        return False


def _choose_renderer(fmt: str, stream: TextIO) -> Processor:
    use_json = fmt == "json" or (fmt == "auto" and not _is_tty(stream))
    if use_json:
        return structlog.processors.JSONRenderer(sort_keys=False)
    colors = _is_tty(stream) and "NO_COLOR" not in os.environ
    # exceptions arrive as text (`format_exc_info`, redacted): printed as they are,
    # whether or not rich happens to be loaded
    return structlog.dev.ConsoleRenderer(
        colors=colors, exception_formatter=structlog.dev.plain_traceback
    )


#: the environment variables that choose the log format and level (below an option, above
#: the config file's [logging])
ENV_FORMAT = "BRIDGE_LOG_FORMAT"
ENV_LEVEL = "BRIDGE_LOG_LEVEL"


def choose_logging(
    option_format: str | None,
    option_level: str | None,
    config_format: str | None,
    config_level: str | None,
    environ: Mapping[str, str],
) -> tuple[str, str]:
    """The log format and level, each from the first that sets it: the command-line
    option, the environment (`BRIDGE_LOG_FORMAT`, `BRIDGE_LOG_LEVEL`), the config file;
    else `auto` and `warning`. A bad environment value is a ValueError naming it."""
    env_format = environ.get(ENV_FORMAT, "").strip().lower() or None
    env_level = environ.get(ENV_LEVEL, "").strip().lower() or None
    if env_format is not None and env_format not in LOG_FORMATS:
        raise ValueError(
            f"{ENV_FORMAT} must be one of {', '.join(LOG_FORMATS)}, not {env_format!r}"
        )
    if env_level is not None and env_level not in LEVELS:
        raise ValueError(f"{ENV_LEVEL} must be one of {', '.join(LEVELS)}, not {env_level!r}")
    fmt = option_format or env_format or config_format or "auto"
    level = option_level or env_level or config_level or "warning"
    return fmt, level


def configure_logging(
    fmt: LogFormat | str = "auto", level: str = "info", stream: TextIO | None = None
) -> None:
    """Set up structlog (and stdlib logging) to write to `stream`, stderr by default.

    `fmt`: "json" for JSON lines, "console" for readable lines, "auto" for JSON unless the
    stream is a terminal. Raises ValueError for an unknown format or level.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    out: TextIO = stream if stream is not None else sys.stderr
    numeric = LEVELS[level.lower()]
    renderer = _choose_renderer(fmt, out)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
    ]
    structlog.configure(
        processors=[*shared, redact_secrets, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )

    # stdlib loggers (urllib3, SQLAlchemy...) share the stream, the format and the redaction
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.set_name("bridge")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "bridge"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
