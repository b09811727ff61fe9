"""A scripted HTTP server on 127.0.0.1 for the HttpClient tests, and a client for it.

The server answers each path from a script (status, headers, body, or a dropped
connection); the client gets a recording fake sleep, so waits are asserted as values,
never timed. The `server` fixture is in `conftest.py`.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bridge.vendors.http import HttpClient

__all__ = ["DROP", "Reply", "ScriptedServer", "Sleeps", "client_for"]

DROP = "drop"


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: dict[str, list[Reply | str]] = {}
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()

    def next_reply(self, path: str) -> Reply | str:
        with self.lock:
            replies = self.script.get(path) or [Reply(404, {"error": "RecordNotFound"})]
            return replies.pop(0) if len(replies) > 1 else replies[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.log.append((self.command, self.path, dict(self.headers)))
        reply = self.server.next_reply(path)
        if reply == DROP:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        assert isinstance(reply, Reply)
        if reply.delay:
            threading.Event().wait(reply.delay)
        if isinstance(reply.body, bytes):
            data = reply.body  # sent as it is: a body cut short
        else:
            data = json.dumps(reply.body).encode() if reply.body is not None else b""
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(srv: ScriptedServer, sleeps: Sleeps, **kwargs: Any) -> HttpClient:
    host, port = srv.server_address[:2]

    def auth(prepared: Any) -> None:
        prepared.headers["Authorization"] = "Bearer test-token"

    return HttpClient(f"http://{host!s}:{port}", auth=auth, sleep=sleeps, **kwargs)
