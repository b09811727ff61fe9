"""`bridge serve` put together: each pair's ledger and adapters, the worker, the intake, the
app, and uvicorn to serve it (in the foreground for the command, in a thread for tests
and the benchmark)."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import structlog
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from bridge.config import Config, ServeSettings
from bridge.factory import build_adapters
from bridge.ledger import Ledger, default_holder
from bridge.ledger.tables import utcnow
from bridge.metrics import PairLedgers, WebhookCounters
from bridge.serve.app import create_app
from bridge.serve.intake import Endpoint, Intake
from bridge.serve.runner import InProcessRuns, PairWork, QueuedRuns
from bridge.vendors.registry import SIDES, VENDORS
from bridge.worker.queue import QueueNotOnPostgreSQLError, queue_conninfo, queue_counts
from bridge.worker.targeted import TargetedQueue

__all__ = ["BackgroundServer", "Service", "run_foreground"]

log = structlog.get_logger("bridge.serve")


class Service:
    """Everything `bridge serve` runs, for the pairs given (validated configs; their
    secrets are read here: `SecretError` when one cannot be). Targeted runs go to the
    workers' queue when the ledger's database has one (and `use_queue`), else they run
    in this process. `now`: the clock of the runs and of the replay window (the demo's
    simulated one)."""

    def __init__(
        self,
        pairs: Mapping[str, Config],
        *,
        holder: str | None = None,
        lease_retry: float = 5.0,
        now: Callable[[], datetime] = utcnow,
        use_queue: bool = True,
    ) -> None:
        first = next(iter(pairs.values()))
        self.settings: ServeSettings = first.serve
        self.registry = CollectorRegistry(auto_describe=True)
        self.counters = WebhookCounters(self.registry)
        self._stack = ExitStack()
        holder = holder or f"{default_holder()}:serve"
        work: dict[str, PairWork] = {}
        endpoints: dict[tuple[Any, str], Endpoint] = {}
        try:
            for name, config in pairs.items():
                adapters = build_adapters(config)
                ledger = self._stack.enter_context(Ledger.open(config.ledger_url, sides=SIDES))
                actors = {}
                for vendor in VENDORS:
                    settings = config.section(vendor.section)
                    actors[vendor.name] = settings.bridge_actor_id
                    secret = settings.webhook_secret
                    endpoints[(vendor.name, name)] = Endpoint(
                        name,
                        vendor.name,
                        vendor.webhooks,
                        secret.reveal().encode() if secret is not None else None,
                    )
                work[name] = PairWork(
                    config,
                    ledger,
                    adapters,
                    self.counters,
                    holder=holder,
                    actors=actors,
                    stop=lambda: self.runs.stopping(),
                    now=now,
                )
        except BaseException:
            self._stack.close()
            raise
        self.work = work
        self.registry.register(PairLedgers({name: w.collector for name, w in work.items()}))
        timing: dict[str, Any] = {
            "coalesce": self.settings.coalesce_seconds,
            "lease_retry": lease_retry,
        }
        self.queue = _workers_queue(first.ledger_url) if use_queue else None
        if self.queue is not None:
            self._stack.callback(self.queue.close)
            self.runs: InProcessRuns = QueuedRuns(work, self.counters, self.queue, **timing)
        else:
            self.runs = InProcessRuns(work, self.counters, **timing)
        self.intake = Intake(
            endpoints,
            self.runs,
            self.counters,
            window=timedelta(seconds=self.settings.replay_window_seconds),
            max_body_bytes=self.settings.max_body_bytes,
            now=now,
        )
        self.app: Starlette = create_app(self.intake, self.health, self.registry)

    @property
    def mode(self) -> str:
        """Where targeted runs happen: `queue` (`bridge worker` jobs) or `in-process`."""
        return "queue" if self.queue is not None else "in-process"

    def health(self) -> dict[str, Any]:
        """`GET /health`: the worker alive, where runs happen, per pair its queue and last
        run."""
        facts = self.runs.health()
        return {"ok": facts["worker"], "runs": self.mode, **facts}

    def start(self) -> None:
        self.runs.start()

    def close(self) -> None:
        """Finish the run in flight, then close the ledgers."""
        self.runs.stop()
        self._stack.close()


def _workers_queue(ledger_url: str) -> TargetedQueue | None:
    """The workers' queue, open, when the ledger is on PostgreSQL and a `bridge worker` has
    created the queue there; None otherwise (runs stay in this process)."""
    try:
        conninfo = queue_conninfo(ledger_url)
    except QueueNotOnPostgreSQLError:
        return None
    if queue_counts(conninfo, []) is None:
        log.warning("serve.no_queue", note="no `bridge worker` has created the queue: in-process")
        return None
    return TargetedQueue(conninfo).open()


def _uvicorn(app: Starlette, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
    )


def run_foreground(service: Service, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C (uvicorn's handlers: it stops taking calls and
    finishes those in flight), then stop the worker and close the ledgers."""
    # uvicorn raises the signal it caught again once it has stopped: with the default
    # handler that would end the process before the worker finishes its run
    quiet = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    service.start()
    try:
        _uvicorn(service.app, host, port).run()
    finally:
        service.close()
        for sig, handler in quiet.items():
            signal.signal(sig, handler)


class BackgroundServer:
    """uvicorn in a daemon thread on a port of its own (tests, the benchmark)."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = _uvicorn(app, self.host, self.port)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout * 100)):
            if self._server.started:
                return self
            deadline.wait(0.01)
        raise RuntimeError("bridge serve did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()
