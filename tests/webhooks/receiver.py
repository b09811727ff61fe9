"""A tiny webhook receiver for the tests: an `http.server` thread on 127.0.0.1 that keeps
every call it gets and answers with the status the test chose (200 by default, or each
status of `answers` in turn)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    path: str
    #: header names in lower case
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """`with Receiver() as rx:` then point a webhook at `rx.url + "/hook"`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        #: statuses to answer, one per call, before falling back to `status`
        self.answers: list[int] = []
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.calls.append(Call(self.path, headers, body))
                    status = receiver.answers.pop(0) if receiver.answers else receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Call]:
        """The calls once there are at least `count` (fails the test after `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.received()
            if len(calls) >= count:
                return calls
            time.sleep(0.01)
        raise AssertionError(f"expected {count} webhook calls, got {len(self.received())}")


def bodies(calls: list[Call]) -> Iterator[Any]:
    return (call.json() for call in calls)
