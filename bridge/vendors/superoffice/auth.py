"""SuperOffice credentials: SOTicket + app token, Bearer, Basic, and the system-user flow.

Each mode is a callable that adds headers to a prepared request, so that `HttpClient`
stays vendor-neutral. Only the system-user mode can renew itself: its ticket is
short-lived (lifetime undocumented), so it is exchanged lazily, cached, and exchanged
again once when the API answers 401 (`HttpClient(on_unauthorized=auth.refresh)`).

jwt and cryptography are imported by the system-user mode's own functions, when it signs
or reads a token: the other modes never load them (a third of the adapter's import).
"""

from __future__ import annotations

import base64
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import requests

from bridge.core.contract import PermanentError
from bridge.secrets import register_secret_value
from bridge.vendors.http import HttpClient, decode_json
from bridge.vendors.superoffice.errors import error_code

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = [
    "TICKET_CLAIM",
    "BasicAuth",
    "BearerAuth",
    "SOTicketAuth",
    "SuperOfficeAuth",
    "SystemUserAuth",
    "sign_system_token",
]

#: the JWT claim that carries the SOTicket after a system-user exchange
TICKET_CLAIM = "http://schemes.superoffice.net/identity/ticket"


class SuperOfficeAuth(ABC):
    """Adds credentials to a request. `refresh` renews them where the mode allows it."""

    mode: ClassVar[str]

    @abstractmethod
    def __call__(self, request: requests.PreparedRequest) -> None: ...

    @property
    def refreshable(self) -> bool:
        return False

    def refresh(self) -> None:  # noqa: B027 - static credentials have nothing to renew
        """Renew credentials after a 401 (a no-op for static credentials)."""

    def secrets(self) -> tuple[str, ...]:
        """Every secret value this mode sends, so that logs and cassettes can scrub them."""
        return ()


def _register(values: tuple[str | None, ...]) -> None:
    """Mask these values wherever they would appear in a log line."""
    for value in values:
        if value:
            register_secret_value(value)


def _set(request: requests.PreparedRequest, name: str, value: str) -> None:
    request.headers[name] = value


class SOTicketAuth(SuperOfficeAuth):
    """`Authorization: SOTicket {ticket}` plus `SO-AppToken` (required by Online)."""

    mode = "soticket"

    def __init__(self, ticket: str, app_token: str | None = None) -> None:
        self._ticket = ticket
        self._app_token = app_token
        _register(self.secrets())

    def __call__(self, request: requests.PreparedRequest) -> None:
        _set(request, "Authorization", f"SOTicket {self._ticket}")
        if self._app_token:
            _set(request, "SO-AppToken", self._app_token)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._ticket, self._app_token) if s)


class BearerAuth(SuperOfficeAuth):
    """An OAuth/OpenID Connect access token (renewing it is the caller's business)."""

    mode = "bearer"

    def __init__(self, token: str, app_token: str | None = None) -> None:
        self._token = token
        self._app_token = app_token
        _register(self.secrets())

    def __call__(self, request: requests.PreparedRequest) -> None:
        _set(request, "Authorization", f"Bearer {self._token}")
        if self._app_token:
            _set(request, "SO-AppToken", self._app_token)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._token, self._app_token) if s)


class BasicAuth(SuperOfficeAuth):
    """User name and password, which only on-site installations accept."""

    mode = "basic"

    def __init__(self, username: str, password: str) -> None:
        self._username = username
        self._password = password
        raw = f"{username}:{password}".encode()
        self._header = "Basic " + base64.b64encode(raw).decode("ascii")
        _register(self.secrets())

    def __call__(self, request: requests.PreparedRequest) -> None:
        _set(request, "Authorization", self._header)

    def secrets(self) -> tuple[str, ...]:
        return (self._password, self._header.removeprefix("Basic "))


def _load_private_key(pem: str | bytes) -> RSAPrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise PermanentError("system user: the private key is not an unencrypted PEM key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PermanentError("system user: the private key is not an RSA key")
    return key


def sign_system_token(system_token: str, private_key_pem: str | bytes, when: datetime) -> str:
    """`token.yyyyMMddHHmm.base64(RSA-SHA256 signature)`, as SuperOffice's login expects."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    stamp = when.astimezone(UTC).strftime("%Y%m%d%H%M")
    payload = f"{system_token}.{stamp}"
    key = _load_private_key(private_key_pem)
    signature = key.sign(payload.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{payload}.{base64.b64encode(signature).decode('ascii')}"


def _no_auth(request: requests.PreparedRequest) -> None:
    """The login endpoint authenticates by the signed token in the body."""


class SystemUserAuth(SuperOfficeAuth):
    """Server-to-server login: sign the system-user token, exchange it for a ticket.

    `login_url` is the login service root, e.g. `https://sod.superoffice.com/Login` (the
    exchange goes to `{login_url}/api/PartnerSystemUser/Authenticate`). When
    `public_key_pem` is given, the returned JWT's signature is verified with it; its time
    claims are not checked (the ticket's lifetime is enforced by the API's 401, which
    triggers a fresh exchange).
    """

    mode = "system_user"

    def __init__(
        self,
        *,
        system_token: str,
        private_key_pem: str | bytes,
        app_token: str,
        tenant: str,
        login_url: str,
        public_key_pem: str | bytes | None = None,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] | None = None,
        http: HttpClient | None = None,
    ) -> None:
        self._system_token = system_token
        self._private_key_pem = private_key_pem
        _load_private_key(private_key_pem)  # fail at construction, not at the first call
        self._app_token = app_token
        self._tenant = tenant
        self._public_key_pem = public_key_pem
        self._clock = clock or (lambda: datetime.now(UTC))
        self._http = http or HttpClient(
            login_url, auth=_no_auth, timeout=timeout, error_code=error_code, sleep=sleep
        )
        self._lock = threading.Lock()
        self._ticket: str | None = None
        self._signed: str | None = None
        #: exchanges performed (tests and `bridge check` read this)
        self.exchanges = 0

    @property
    def refreshable(self) -> bool:
        return True

    def __call__(self, request: requests.PreparedRequest) -> None:
        ticket = self._ticket or self._exchange_once()
        _set(request, "Authorization", f"SOTicket {ticket}")
        _set(request, "SO-AppToken", self._app_token)

    def refresh(self) -> None:
        with self._lock:
            self._ticket = None
        self._exchange_once()

    def ticket(self) -> str:
        """The cached ticket, exchanging first if there is none."""
        return self._ticket or self._exchange_once()

    def secrets(self) -> tuple[str, ...]:
        values = (self._system_token, self._app_token, self._ticket, self._signed)
        return tuple(v for v in values if v)

    def _exchange_once(self) -> str:
        with self._lock:
            if self._ticket is None:
                self._ticket = self._exchange()
            return self._ticket

    def _exchange(self) -> str:
        self._signed = sign_system_token(self._system_token, self._private_key_pem, self._clock())
        body = {
            "SignedSystemToken": self._signed,
            "ApplicationToken": self._app_token,
            "ContextIdentifier": self._tenant,
            "ReturnTokenType": "JWT",
        }
        path = "api/PartnerSystemUser/Authenticate"
        # Exchanging has no side effect on the tenant, so a blind retry is safe.
        response = self._http.request("POST", path, json=body, idempotent=True)
        self.exchanges += 1
        answer = decode_json(response, path)
        if not isinstance(answer, dict) or not answer.get("IsSuccessful"):
            reason = answer.get("ErrorMessage") if isinstance(answer, dict) else None
            detail = f": {str(reason)[:200]}" if reason else ""
            raise PermanentError(f"system user: the login service refused the exchange{detail}")
        token = answer.get("Token")
        if not isinstance(token, str) or not token:
            raise PermanentError("system user: the login service answered without a token")
        ticket = self._ticket_from_jwt(token)
        _register((self._signed, token, ticket))
        return ticket

    def _ticket_from_jwt(self, token: str) -> str:
        import jwt

        claims: dict[str, Any]
        try:
            if self._public_key_pem is None:
                claims = jwt.decode(token, options={"verify_signature": False})
            else:
                claims = jwt.decode(
                    token,
                    self._public_key_pem,
                    algorithms=["RS256"],
                    options={
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                        "verify_aud": False,
                        "verify_iss": False,
                    },
                )
        except jwt.InvalidTokenError as exc:
            raise PermanentError(
                f"system user: the returned JWT is not valid ({type(exc).__name__})"
            ) from None
        ticket = claims.get(TICKET_CLAIM)
        if not isinstance(ticket, str) or not ticket:
            raise PermanentError("system user: the returned JWT carries no ticket claim")
        return ticket
