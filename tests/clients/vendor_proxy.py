"""An HTTPS proxy that answers for a vendor's host from a local simulator.

Some clients build their URLs from a tenant name (`https://{subdomain}.zendesk.com/...`)
and offer no setting to change the host. They do honour the standard proxy variables of
their HTTP library (`HTTPS_PROXY`, with `REQUESTS_CA_BUNDLE` for the certificate), so the
test starts this proxy and points those variables at it: the client opens a `CONNECT`
tunnel to the vendor's host, the proxy ends TLS there with a throwaway certificate for
that host (signed by a throwaway CA the client is told to trust) and forwards each request
inside the tunnel to the simulator over plain HTTP. The client's code and its URLs stay as
they are. A tunnel to any other host is refused, so nothing reaches the internet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import _SocketWriter  # type: ignore[attr-defined]
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: hop-by-hop headers a proxy does not pass on (RFC 9110 §7.6.1), plus the length it resets
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length"}
)


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA (what the client trusts) and the host's certificate chain and key."""

    ca_file: Path
    chain_file: Path
    key_file: Path


def make_certificates(host: str, directory: Path) -> Certificates:
    """Write a CA and a certificate for `host` signed by it (valid for a day) to `directory`."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bridge test proxy CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    certs = Certificates(directory / "ca.pem", directory / "chain.pem", directory / "key.pem")
    certs.ca_file.write_bytes(ca.public_bytes(pem))
    certs.chain_file.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    certs.key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certs


@dataclass
class VendorProxy:
    """Tunnels to `host:443` answered by the simulator at `target` (`127.0.0.1`, port).

    `seen` lists `(method, path)` of every request forwarded, `refused` every tunnel or
    request the proxy would not carry (another host, or a request outside a tunnel)."""

    host: str
    target: tuple[str, int]
    certificates: Certificates
    seen: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.certificates.chain_file, self.certificates.key_file)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def client_env(self) -> dict[str, str]:
        """The variables that route a `requests`-based client's HTTPS through the proxy
        and make it trust the proxy's certificate; local addresses go direct."""
        return {
            "HTTPS_PROXY": self.url,
            "https_proxy": self.url,
            "REQUESTS_CA_BUNDLE": str(self.certificates.ca_file),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def start(self) -> VendorProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @contextlib.contextmanager
    def running(self) -> Iterator[VendorProxy]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def _handler_for(proxy: VendorProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        in_tunnel = False

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_CONNECT(self) -> None:
            host, _, port = self.path.rpartition(":")
            if host != proxy.host or port != "443":
                proxy.refused.append(f"CONNECT {self.path}")
                self.send_error(403, "only the simulated vendor host is proxied")
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            tls = proxy._context.wrap_socket(self.connection, server_side=True)
            self.connection = tls
            self.rfile = tls.makefile("rb")
            self.wfile = _SocketWriter(tls)
            self.in_tunnel = True
            self.close_connection = False
            while not self.close_connection:
                self.handle_one_request()
            self.close_connection = True

        def forward(self) -> None:
            if not self.in_tunnel:
                proxy.refused.append(f"{self.command} {self.path}")
                self.send_error(403, "plain HTTP is not proxied")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            proxy.seen.append((self.command, self.path))
            upstream = http.client.HTTPConnection(*proxy.target, timeout=60)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
            finally:
                upstream.close()
            self.send_response_only(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.forward()

        def do_POST(self) -> None:
            self.forward()

        def do_PUT(self) -> None:
            self.forward()

        def do_DELETE(self) -> None:
            self.forward()

    return Handler
