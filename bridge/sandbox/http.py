"""What handlers see and return: requests, responses, errors and routes, independent of
the server that carries them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Handler",
    "HandlerResult",
    "HttpError",
    "Request",
    "Response",
    "Route",
    "compile_route",
    "encode_body",
    "to_response",
]


@dataclass(slots=True)
class Request:
    """A parsed HTTP request as handlers see it.

    `path` has the query removed and a trailing `.json` stripped; `raw_path` is as sent.
    `headers` keys are lower-case. `params` holds the `{name}` values of the matched route.
    `principal` is whatever `authenticate` chose to remember (e.g. the API user).
    `response_headers` are added to the answer, whatever it is (rate-limit headers).
    """

    method: str
    path: str
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    route: Route | None = None
    principal: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def json(self) -> Any:
        """The body as JSON (None when empty); malformed JSON raises a 400 `HttpError`."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise HttpError(400, {"error": "BadRequest", "description": "Malformed JSON"}) from None


@dataclass(slots=True)
class Response:
    """An answer: `body` is JSON-able, `bytes` (sent as is) or None (empty body)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raise from a handler or hook to answer with this status and body."""

    def __init__(
        self, status: int, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status, body, dict(headers or {}))


HandlerResult = Response | tuple[int, Any] | tuple[int, Any, Mapping[str, str]]
Handler = Callable[[Request], HandlerResult]


@dataclass(frozen=True, slots=True)
class Route:
    """`pattern` uses `{name}` segments; a trailing `.json` is accepted on every route."""

    method: str
    pattern: str
    name: str
    handler: Handler
    auth: bool = True
    limited: bool = True
    regex: re.Pattern[str] = field(default=re.compile(""), compare=False)
    params: int = 0


def compile_route(pattern: str) -> tuple[re.Pattern[str], int]:
    """The regex matching `pattern` (`{name}` segments, optional trailing slash) and how many
    params it has, which orders routes: fewer params win."""
    parts: list[str] = []
    count = 0
    for piece in re.split(r"(\{\w+\})", pattern):
        if piece.startswith("{") and piece.endswith("}"):
            parts.append(f"(?P<{piece[1:-1]}>[^/]+?)")
            count += 1
        else:
            parts.append(re.escape(piece))
    return re.compile("^" + "".join(parts) + r"/?$"), count


def to_response(result: HandlerResult) -> Response:
    """A handler's result as a `Response` (handlers may return a plain tuple)."""
    if isinstance(result, Response):
        return result
    if len(result) == 2:
        return Response(result[0], result[1])
    status, body, headers = result
    return Response(status, body, dict(headers))


def encode_body(response: Response) -> tuple[bytes, str | None]:
    """The body's bytes and content type (None for an empty body)."""
    body = response.body
    if body is None:
        return b"", None
    if isinstance(body, bytes | bytearray):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return (
        json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        "application/json; charset=utf-8",
    )
