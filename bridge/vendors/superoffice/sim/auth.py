"""The SuperOffice system-user exchange, both sides, for the simulator and its tests.

A partner application signs `"{system user token}.{UTC yyyyMMddHHmm}"` with RSA-SHA256
(PKCS#1 v1.5) and appends `"." + base64(signature)`; SuperOffice verifies it against the
application's public key and answers a JWT whose claim
`http://schemes.superoffice.net/identity/ticket` is the SOTicket credential (reference §4).
The simulator signs its JWTs with its own RSA key (RS256) and publishes the public half.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "CLAIM_CONTEXT",
    "CLAIM_NETSERVER_URL",
    "CLAIM_TICKET",
    "CLAIM_WEBAPI_URL",
    "JwtIssuer",
    "LoginError",
    "generate_rsa_keypair",
    "partner_keypair",
    "sign_system_user_token",
    "verify_signed_system_token",
]

CLAIM_TICKET = "http://schemes.superoffice.net/identity/ticket"
CLAIM_CONTEXT = "http://schemes.superoffice.net/identity/ctx"
CLAIM_WEBAPI_URL = "http://schemes.superoffice.net/identity/webapi_url"
CLAIM_NETSERVER_URL = "http://schemes.superoffice.net/identity/netserver_url"

_STAMP = "%Y%m%d%H%M"


class LoginError(ValueError):
    """The exchange was refused; the message goes into `ErrorMessage` (no secrets in it)."""


def generate_rsa_keypair(bits: int = 2048) -> tuple[str, str]:
    """A fresh RSA key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@functools.cache
def partner_keypair() -> tuple[str, str]:
    """The sandbox's partner-application key pair (one per process, so tests stay fast).

    Pass the public half to `SuperOfficeSimulator(public_key_pem=...)` and sign with the
    private half (`sign_system_user_token`), as a real partner app signs with its own key.
    """
    return generate_rsa_keypair()


def sign_system_user_token(system_user_token: str, private_key_pem: str, when: datetime) -> str:
    """`token.yyyyMMddHHmm.base64(RSA-SHA256 signature)`, the `SignedSystemToken`."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the system-user token is signed with an RSA private key")
    data = f"{system_user_token}.{when.astimezone(UTC).strftime(_STAMP)}"
    signature = key.sign(data.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{data}.{base64.b64encode(signature).decode()}"


def verify_signed_system_token(
    signed: str, public_key_pem: str, now: datetime, max_skew: timedelta | None
) -> str:
    """Check the signature and the timestamp; return the plain system-user token."""
    parts = signed.rsplit(".", 2)
    if len(parts) != 3 or not parts[0]:
        raise LoginError("SignedSystemToken must be token.yyyyMMddHHmm.signature")
    token, stamp, signature_b64 = parts
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        when = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
    except (binascii.Error, ValueError):
        raise LoginError("SignedSystemToken is malformed") from None
    key = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise LoginError("the configured partner key is not an RSA public key")
    try:
        key.verify(signature, f"{token}.{stamp}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise LoginError("SignedSystemToken signature is invalid") from None
    # the stamp has minute precision: allow the minute it names
    if max_skew is not None and not (
        when - max_skew <= now <= when + timedelta(minutes=1) + max_skew
    ):
        raise LoginError("SignedSystemToken timestamp is too old or in the future")
    return token


class JwtIssuer:
    """The simulator's token service: an RSA key that signs RS256 JWTs."""

    def __init__(self, private_key_pem: str | None = None, *, key_id: str = "sandbox") -> None:
        if private_key_pem is None:
            private_key_pem = _issuer_key()[0]
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the JWT issuer needs an RSA private key")
        self._key = key
        self.key_id = key_id
        self.public_key_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def issue(self, claims: Mapping[str, Any], *, now: datetime, lifetime: timedelta) -> str:
        """A JWT with `claims` plus `iss` and `exp` (on the simulated clock); no `iat`/`nbf`,
        so a client verifying on wall-clock time is not tripped by a clock set ahead."""
        payload = {**claims, "iss": "SuperOffice AS", "exp": int((now + lifetime).timestamp())}
        return jwt.encode(payload, self._key, algorithm="RS256", headers={"kid": self.key_id})

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document (what `/login/.well-known/jwks` serves)."""
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self._key.public_key(), as_dict=True
        )
        jwk.update({"kid": self.key_id, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}


@functools.cache
def _issuer_key() -> tuple[str, str]:
    return generate_rsa_keypair()
