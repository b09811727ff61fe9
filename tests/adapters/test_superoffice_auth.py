"""SuperOffice auth modes, offline: a fake transport plays the login service and the API."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from requests.adapters import BaseAdapter

from bridge.core.contract import PermanentError
from bridge.vendors.http import HttpClient, VendorHTTPError
from bridge.vendors.superoffice.adapter import SuperOfficeAdapter
from bridge.vendors.superoffice.auth import (
    TICKET_CLAIM,
    BasicAuth,
    BearerAuth,
    SOTicketAuth,
    SystemUserAuth,
    sign_system_token,
)

NOW = datetime(2024, 5, 20, 14, 41, 10, tzinfo=UTC)
LOGIN = "https://sod.superoffice.test/Login"
TENANT_URL = "https://sod.superoffice.test/Cust12345"

Handler = Callable[[requests.PreparedRequest], tuple[int, Any]]


class FakeTransport(BaseAdapter):
    """Answers every request with `handler(request)`; records what was sent."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.sent: list[requests.PreparedRequest] = []
        self.statuses: list[int] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        status, body = self.handler(request)
        self.statuses.append(status)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.request = request
        response.url = request.url or ""
        return response

    def close(self) -> None:
        pass


def _session(transport: FakeTransport) -> requests.Session:
    session = requests.Session()
    session.mount("https://", transport)
    return session


def _keys() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture(scope="module")
def partner_keys() -> tuple[bytes, bytes]:
    """The application's key pair (it signs the system-user token)."""
    return _keys()


@pytest.fixture(scope="module")
def login_keys() -> tuple[bytes, bytes]:
    """SuperOffice's key pair (it signs the returned JWT)."""
    return _keys()


def _prepared(auth: Callable[[requests.PreparedRequest], None]) -> requests.PreparedRequest:
    request = requests.Request("GET", f"{TENANT_URL}/api/v1/Ticket/1").prepare()
    auth(request)
    return request


def _verify(signed: str, public_pem: bytes) -> tuple[str, str]:
    """Split `token.stamp.signature` and check the signature; returns (token, stamp)."""
    payload, _, signature = signed.rpartition(".")
    token, _, stamp = payload.rpartition(".")
    public = serialization.load_pem_public_key(public_pem)
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        base64.b64decode(signature), payload.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return token, stamp


def test_soticket_sends_ticket_and_app_token() -> None:
    request = _prepared(SOTicketAuth("7T:abc123", "app-secret"))
    assert request.headers["Authorization"] == "SOTicket 7T:abc123"
    assert request.headers["SO-AppToken"] == "app-secret"


def test_soticket_without_app_token_sends_no_app_token_header() -> None:
    request = _prepared(SOTicketAuth("7T:abc123"))
    assert "SO-AppToken" not in request.headers


def test_bearer_and_basic_headers() -> None:
    bearer = _prepared(BearerAuth("tok-1"))
    assert bearer.headers["Authorization"] == "Bearer tok-1"
    basic = _prepared(BasicAuth("admin", "s3cret"))
    assert basic.headers["Authorization"] == "Basic " + base64.b64encode(b"admin:s3cret").decode()
    assert "s3cret" in BasicAuth("admin", "s3cret").secrets()
    assert not BasicAuth("admin", "s3cret").refreshable


def test_sign_system_token_format_and_signature(partner_keys: tuple[bytes, bytes]) -> None:
    private, public = partner_keys
    # a non-UTC time is converted: the stamp is always UTC
    when = datetime(2024, 5, 20, 16, 41, 59, tzinfo=timezone(timedelta(hours=2)))
    signed = sign_system_token("Bridge-abc123", private, when)
    token, stamp = _verify(signed, public)
    assert token == "Bridge-abc123"
    assert stamp == "202405201441"


def test_sign_system_token_signature_fails_with_other_key(
    partner_keys: tuple[bytes, bytes], login_keys: tuple[bytes, bytes]
) -> None:
    signed = sign_system_token("Bridge-abc123", partner_keys[0], NOW)
    with pytest.raises(InvalidSignature):
        _verify(signed, login_keys[1])


def test_bad_private_key_fails_at_construction() -> None:
    with pytest.raises(PermanentError, match="private key"):
        SystemUserAuth(
            system_token="t",
            private_key_pem="not a key",
            app_token="app",
            tenant="Cust12345",
            login_url=LOGIN,
        )


class LoginAndApi:
    """The login service issues ticket-1, ticket-2, ...; the API accepts only the newest."""

    def __init__(self, partner_public: bytes, login_private: bytes) -> None:
        self.partner_public = partner_public
        self.login_private = login_private
        self.issued: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.refuse = False
        self.api_always_401 = False

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, Any]:
        url = request.url or ""
        if url.startswith(LOGIN):
            assert url == f"{LOGIN}/api/PartnerSystemUser/Authenticate"
            assert request.method == "POST"
            body = json.loads(request.body or b"{}")
            self.bodies.append(body)
            if self.refuse:
                return 200, {"IsSuccessful": False, "Token": None, "ErrorMessage": "Bad token"}
            _verify(body["SignedSystemToken"], self.partner_public)
            ticket = f"7T:ticket-{len(self.issued) + 1}"
            self.issued.append(ticket)
            token = jwt.encode({TICKET_CLAIM: ticket, "exp": 1}, self.login_private, "RS256")
            return 200, {"IsSuccessful": True, "Token": token, "ErrorMessage": ""}
        current = f"SOTicket {self.issued[-1]}" if self.issued else None
        if self.api_always_401 or request.headers.get("Authorization") != current:
            return 401, {"Error": "Unauthorized"}
        return 200, {"odata.metadata": "", "odata.nextLink": None, "value": []}


def _system_auth(
    service: LoginAndApi, transport: FakeTransport, partner_private: bytes, **kwargs: Any
) -> SystemUserAuth:
    login_http = HttpClient(
        LOGIN, auth=lambda r: None, sleep=lambda s: None, session=_session(transport)
    )
    return SystemUserAuth(
        system_token="Bridge-abc123",
        private_key_pem=partner_private,
        app_token="app-secret",
        tenant="Cust12345",
        login_url=LOGIN,
        clock=lambda: NOW,
        http=login_http,
        **kwargs,
    )


def test_system_user_exchanges_lazily_once_and_caches(
    partner_keys: tuple[bytes, bytes], login_keys: tuple[bytes, bytes]
) -> None:
    service = LoginAndApi(partner_keys[1], login_keys[0])
    transport = FakeTransport(service)
    auth = _system_auth(service, transport, partner_keys[0], public_key_pem=login_keys[1])
    assert auth.exchanges == 0
    first = _prepared(auth)
    second = _prepared(auth)
    assert auth.exchanges == 1
    assert (
        first.headers["Authorization"] == second.headers["Authorization"] == "SOTicket 7T:ticket-1"
    )
    assert first.headers["SO-AppToken"] == "app-secret"
    body = service.bodies[0]
    assert body["ApplicationToken"] == "app-secret"
    assert body["ContextIdentifier"] == "Cust12345"
    assert body["ReturnTokenType"] == "JWT"
    assert _verify(body["SignedSystemToken"], partner_keys[1]) == ("Bridge-abc123", "202405201441")
    assert "7T:ticket-1" in auth.secrets()


def test_system_user_rejects_jwt_signed_by_another_key(
    partner_keys: tuple[bytes, bytes], login_keys: tuple[bytes, bytes]
) -> None:
    service = LoginAndApi(partner_keys[1], login_keys[0])
    auth = _system_auth(
        service, FakeTransport(service), partner_keys[0], public_key_pem=partner_keys[1]
    )
    with pytest.raises(PermanentError, match="JWT is not valid"):
        auth.ticket()


def test_system_user_refused_exchange_is_permanent(
    partner_keys: tuple[bytes, bytes], login_keys: tuple[bytes, bytes]
) -> None:
    service = LoginAndApi(partner_keys[1], login_keys[0])
    service.refuse = True
    auth = _system_auth(service, FakeTransport(service), partner_keys[0])
    with pytest.raises(PermanentError, match="refused the exchange: Bad token"):
        auth.ticket()


def _adapter(auth: SystemUserAuth, transport: FakeTransport) -> SuperOfficeAdapter:
    http = HttpClient(
        f"{TENANT_URL}/api/v1/",
        auth=auth,
        on_unauthorized=auth.refresh,
        sleep=lambda s: None,
        session=_session(transport),
    )
    return SuperOfficeAdapter(TENANT_URL, tenant="Cust12345", auth=auth, http=http)


def test_expired_ticket_is_exchanged_again_once_on_401(
    partner_keys: tuple[bytes, bytes], login_keys: tuple[bytes, bytes]
) -> None:
    service = LoginAndApi(partner_keys[1], login_keys[0])
    transport = FakeTransport(service)
    auth = _system_auth(service, transport, partner_keys[0], public_key_pem=login_keys[1])
    adapter = _adapter(auth, transport)
    assert list(adapter.changes(None))[-1].complete
    assert auth.exchanges == 1
    service.issued.append("7T:rotated-by-server")  # the cached ticket-1 is now refused
    pages = list(adapter.changes(None))
    assert pages[-1].complete
    assert auth.exchanges == 2
    api = [
        (r.headers["Authorization"], status)
        for r, status in zip(transport.sent, transport.statuses, strict=True)
        if not (r.url or "").startswith(LOGIN)
    ]
    # one refused call, resent once with the fresh ticket, then the fresh ticket throughout
    assert [a for a in api if a[1] == 401] == [("SOTicket 7T:ticket-1", 401)]
    after = api[api.index(("SOTicket 7T:ticket-1", 401)) + 1 :]
    assert after == [("SOTicket 7T:ticket-3", 200)] * 2  # the resend, then RecycleTicket


def test_persistent_401_is_not_retried_forever(
    partner_keys: tuple[bytes, bytes], login_keys: tuple[bytes, bytes]
) -> None:
    service = LoginAndApi(partner_keys[1], login_keys[0])
    service.api_always_401 = True
    transport = FakeTransport(service)
    auth = _system_auth(service, transport, partner_keys[0])
    adapter = _adapter(auth, transport)
    with pytest.raises(VendorHTTPError) as caught:
        adapter.lookup([1])
    assert caught.value.status == 401
    assert auth.exchanges == 2  # the lazy first exchange and one re-exchange
