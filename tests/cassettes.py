"""Shared vcrpy set-up for the adapter cassettes of every registered vendor.

One switch (`BRIDGE_RECORD_CASSETTES=1`) decides between recording (from a simulator or a
real account) and replaying (CI: `record_mode="none"`, no network). Everything written to a
cassette goes through `Scrubber` first, so credentials, tokens, system-user tickets, JWTs,
e-mail addresses, ticket text and the recording host never reach the repository. Matching
is on method + path + query, never on host, so a cassette recorded against
`http://127.0.0.1:<port>` or a real subdomain replays against the fixed fake base URL.

What is common to every vendor (`Authorization`, cookies, OAuth token names, e-mail
addresses, JWTs) is here; what is one vendor's (its replay URL, its credential headers and
keys, its ticket text) is plain data in its package, read from `bridge.vendors.registry`.
The credential names of every vendor are scrubbed from every cassette: a cassette that
carries another vendor's credential by mistake still keeps nothing secret.

Usage (see docs/cassettes.md)::

    recorder = make_vcr("zendesk", secrets=[token, email], hosts=[sim.base_url])
    with use_cassette(recorder, "lookup_mixed") as cassette:
        ids = cassette.get_metadata("ids", seeded_ids)   # stored when recording
        ...
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import vcr
from vcr.cassette import Cassette

from bridge.vendors import registry
from bridge.vendors.registry import VENDORS

__all__ = [
    "CASSETTE_ROOT",
    "CONTENT_KEYS",
    "FILTERED",
    "RECORD_ENV",
    "REPLAY_BASE_URLS",
    "SECRET_KEYS",
    "Scrubber",
    "env_credentials",
    "make_vcr",
    "no_sleep",
    "recording",
    "use_cassette",
]

RECORD_ENV = "BRIDGE_RECORD_CASSETTES"
CASSETTE_ROOT = Path(__file__).resolve().parents[1] / "cassettes"

#: where replayed requests go, by vendor: any URL works because matching ignores the host
REPLAY_BASE_URLS = {str(v.name): v.cassettes.replay_base_url for v in VENDORS}

FILTERED = "<FILTERED>"
SECRET = "<SECRET>"
CONTENT = "<CONTENT>"

#: headers dropped or masked in requests and responses (compared case-insensitively)
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-xsrf-token",
        "x-csrf-token",
    }
).union(*(v.cassettes.secret_headers for v in VENDORS))

#: JSON keys and form/query parameters whose *string* values are credentials
SECRET_KEYS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "password",
        "secret",
        "client_secret",
        "credentials",
        "jwt",
        "authorization",
        "email",
        "username",
    }
).union(*(v.cassettes.secret_keys for v in VENDORS))

#: ticket text, by vendor: replaced unless it is a kept value (a vendor's own marker)
CONTENT_KEYS = {str(v.name): v.cassettes.content_keys for v in VENDORS}
CONTENT_KEPT = frozenset({""}).union(*(v.cassettes.content_kept for v in VENDORS))

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
#: credentials recognisable by their form, each with its replacement (vendors' own)
_PATTERNS = tuple(
    (re.compile(pattern), replacement)
    for v in VENDORS
    for pattern, replacement in v.cassettes.secret_patterns
)
_SCHEMES = ("Basic", "Bearer", *sorted(set().union(*(v.cassettes.auth_schemes for v in VENDORS))))
_AUTH_SCHEME = re.compile(r"\b(" + "|".join(_SCHEMES) + r")\s+[A-Za-z0-9._~+/=:-]{6,}")
_LOOPBACK = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):\d+")


def recording() -> bool:
    """True when this run records cassettes instead of replaying them."""
    return os.environ.get(RECORD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def env_credentials(*names: str) -> dict[str, str] | None:
    """The named environment variables when all are set (a real account to record against)."""
    values = {name: os.environ.get(name, "") for name in names}
    return values if all(values.values()) else None


def no_sleep(seconds: float) -> None:
    """The sleep handed to adapters on replay: recorded waits cost nothing."""
    del seconds


def _json_value_pattern(keys: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted((re.escape(k) for k in keys), key=len, reverse=True))
    return re.compile(
        r'(?P<head>"(?:' + alternatives + r')"\s*:\s*)"(?P<value>(?:[^"\\]|\\.)*)"',
        re.IGNORECASE,
    )


def _param_pattern(keys: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(sorted((re.escape(k) for k in keys), key=len, reverse=True))
    return re.compile(
        r"(?P<head>(?:^|[?&;\s])(?:" + alternatives + r")=)(?P<value>[^&\s\"';]*)",
        re.IGNORECASE,
    )


class Scrubber:
    """Rewrites one recorded interaction so that it is safe to commit and host-independent.

    `secrets` are literal values (tokens, passwords, e-mail addresses) replaced wherever
    they occur; `hosts` are the base URLs recorded against, rewritten to `replay_base_url`
    (any loopback origin is also rewritten, for simulator recordings).
    """

    def __init__(
        self,
        replay_base_url: str,
        *,
        secrets: Sequence[str] = (),
        hosts: Sequence[str] = (),
        content_keys: Iterable[str] = (),
        secret_keys: Iterable[str] = SECRET_KEYS,
    ) -> None:
        self.replay_base_url = replay_base_url.rstrip("/")
        parts = urlsplit(self.replay_base_url)
        self.replay_origin = f"{parts.scheme}://{parts.netloc}"
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._hosts = sorted({h.rstrip("/") for h in hosts if h}, key=len, reverse=True)
        self._secret_json = _json_value_pattern(secret_keys)
        self._secret_param = _param_pattern(secret_keys)
        keys = list(content_keys)
        self._content_json = _json_value_pattern(keys) if keys else None

    # -- text ---------------------------------------------------------------------------
    def hosts(self, text: str) -> str:
        for host in self._hosts:
            text = text.replace(host, self.replay_base_url)
            # JSON bodies may escape the slashes of URLs
            text = text.replace(host.replace("/", "\\/"), self.replay_base_url.replace("/", "\\/"))
        return _LOOPBACK.sub(self.replay_origin, text)

    def text(self, text: str) -> str:
        """Scrub free text: a body, a header value or a URL."""
        for secret in self._secrets:
            text = text.replace(secret, SECRET)
        text = self.hosts(text)
        text = _JWT.sub("<JWT>", text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        text = _AUTH_SCHEME.sub(lambda m: f"{m[1]} {FILTERED}", text)
        text = self._secret_json.sub(lambda m: f'{m["head"]}"{FILTERED}"', text)
        text = self._secret_param.sub(lambda m: f"{m['head']}{FILTERED}", text)
        if self._content_json is not None:
            text = self._content_json.sub(self._content, text)
        return text

    @staticmethod
    def _content(match: re.Match[str]) -> str:
        value = match["value"]
        kept = value if value in CONTENT_KEPT else CONTENT
        return f'{match["head"]}"{kept}"'

    def _body(self, body: Any) -> Any:
        if body is None:
            return None
        if isinstance(body, bytes):
            try:
                decoded = body.decode("utf-8")
            except UnicodeDecodeError:
                return b"<binary body removed>"
            return self.text(decoded).encode("utf-8")
        if isinstance(body, str):
            return self.text(body)
        return body

    # -- vcrpy hooks ----------------------------------------------------------------------
    def request(self, request: Any) -> Any:
        """`before_record_request`: runs on recorded AND live requests, so it must be stable."""
        request.uri = self.text(request.uri)
        for name in list(request.headers):
            if name.lower() in SECRET_HEADERS:
                request.headers[name] = FILTERED
            else:
                request.headers[name] = self.text(str(request.headers[name]))
        request.body = self._body(request.body)
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        """`before_record_response`: scrub headers and body; keep Content-Length truthful."""
        headers: dict[str, list[str]] = {}
        for name, values in response.get("headers", {}).items():
            if name.lower() in SECRET_HEADERS:
                continue
            listed = values if isinstance(values, list) else [values]
            headers[name] = [self.text(str(v)) for v in listed]
        body = response.get("body", {})
        if isinstance(body, dict) and "string" in body:
            body["string"] = self._body(body["string"])
            payload = body["string"]
            size = len(payload if isinstance(payload, bytes) else str(payload).encode("utf-8"))
            for name in headers:
                if name.lower() == "content-length":
                    headers[name] = [str(size)]
        response["headers"] = headers
        return response


def make_vcr(
    vendor: str,
    *,
    secrets: Sequence[str] = (),
    hosts: Sequence[str] = (),
    content_keys: Iterable[str] | None = None,
) -> vcr.VCR:
    """A `vcr.VCR` for `cassettes/<vendor>/` (a registered vendor's side name): YAML, decoded
    bodies, scrubbed, host-free match.

    Records (`record_mode="all"`) only when `BRIDGE_RECORD_CASSETTES` is set; otherwise
    `record_mode="none"`, so a request without a recorded answer fails instead of
    reaching the network.
    """
    facts = registry.vendor(vendor).cassettes
    scrubber = Scrubber(
        facts.replay_base_url,
        secrets=secrets,
        hosts=hosts,
        content_keys=facts.content_keys if content_keys is None else content_keys,
    )
    return vcr.VCR(
        cassette_library_dir=str(CASSETTE_ROOT / vendor),
        serializer="yaml",
        path_transformer=vcr.VCR.ensure_suffix(".yaml"),
        record_mode="all" if recording() else "none",
        match_on=["method", "path", "query"],
        decode_compressed_response=True,
        before_record_request=scrubber.request,
        before_record_response=scrubber.response,
    )


@contextmanager
def use_cassette(recorder: vcr.VCR, name: str) -> Iterator[Cassette]:
    """Open one cassette: a fresh file when recording, a loud failure when it is missing.

    Recording starts from an empty file because vcrpy's "all" mode would otherwise keep
    stale interactions that no request matched this time.
    """
    path = Path(recorder.cassette_library_dir) / f"{name}.yaml"
    if recording():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
    elif not path.exists():
        raise FileNotFoundError(
            f"cassette {path} is missing: record it with {RECORD_ENV}=1 (see docs/cassettes.md)"
        )
    with recorder.use_cassette(name) as cassette:
        yield cassette
