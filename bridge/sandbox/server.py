"""The HTTP/1.1 server a simulator listens with: it parses each request, hands it to the
simulator and writes the answer, or drops the connection when told to."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bridge.sandbox.http import Request

__all__ = ["Answer", "Dispatch", "SimServer"]

log = logging.getLogger("bridge.sandbox")

#: the simulator's answer to one request: (status, body bytes, headers)
Answer = tuple[int, bytes, dict[str, str]]
#: turns a request into an answer, or None to close the connection without one
Dispatch = Callable[[Request], Answer | None]


class SimServer(ThreadingHTTPServer):
    """A threaded server handing every request to `dispatch`.

    It tracks open connections so that `close_connections` can cut off idle keep-alive
    clients when the simulator stops (`shutdown` alone leaves them open).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dispatch: Dispatch) -> None:
        self.dispatch = dispatch
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _HandlerClass)

    def close_connections(self) -> None:
        """Shut down every connection still open (call after `shutdown`)."""
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _HandlerClass(BaseHTTPRequestHandler):
    """One connection: each request is parsed, dispatched, and its answer written whole."""

    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    server_version = "bridge-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 60  # idle keep-alive connections close after a minute
    server: SimServer

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sandbox http: " + format, *args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        split = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw_path = split.path or "/"
        path = raw_path[:-5] if raw_path.endswith(".json") else raw_path
        request = Request(
            method=self.command.upper(),
            path=path,
            raw_path=raw_path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
        )
        outcome = self.server.dispatch(request)
        if outcome is None:  # drop: close without answering
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload, out_headers = outcome
        if (request.header("connection") or "").lower() == "close":
            self.close_connection = True
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines.extend(f"{k}: {v}" for k, v in out_headers.items())
        lines.append(f"Content-Length: {len(payload) if self.command != 'HEAD' else 0}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + (payload if self.command != "HEAD" else b""))
        except OSError:  # the client gave up (a timeout on a slow fault): nothing to answer
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch  # noqa: N815
