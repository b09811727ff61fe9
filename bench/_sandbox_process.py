"""Both simulators in a child process, so that a benchmark's memory figures cover bridge alone.

The child holds a `Sandbox` (both simulators on one frozen `SimClock`) seeded for a migration
and answers a few requests over a pipe; the parent runs bridge against the simulators' HTTP
endpoints and drives the child's clock with a `RemoteClock`. Simulated time and call counts
are the same as with the simulators in-process: only where the memory lives changes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import traceback
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests

from bridge.sandbox import parse_iso
from bridge.sandbox_pair import Sandbox

__all__ = ["RemoteClock", "SandboxProcess", "Seeded"]

#: how long the parent waits for the child to answer a request, or to stop, in seconds
REPLY_TIMEOUT = 600.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Seeded:
    """What the parent needs from the child after seeding."""

    config_path: Path
    so_ids: list[int]
    zd_ids: list[int]
    zendesk_admin: str
    superoffice_admin: str
    now: datetime


def _serve(
    conn: Connection,
    folder: str,
    start: datetime,
    zendesk_config: dict[str, Any],
    soft_deletes: int,
    purges: int,
) -> None:
    """Child process: seed as the in-process benchmark did, then answer until told to stop
    (or until the parent's end of the pipe closes, so a dead parent leaves no orphan)."""
    sandbox = Sandbox()
    # freeze first: set-then-freeze would let a few real microseconds slip in between
    sandbox.clock.freeze()
    sandbox.clock.set(start)
    sandbox.start()
    try:
        sandbox.zendesk.configure(zendesk_config)
        total = soft_deletes + purges
        so_ids = sandbox.superoffice.seed_tickets(total, title="Bench {n}")
        zd_ids = sandbox.zendesk.seed_tickets(count=total, template={"subject": "Bench {n}"})
        sandbox.superoffice.soft_delete(so_ids)
        sandbox.superoffice.purge(so_ids[soft_deletes:])
        config_path = sandbox.write_config(Path(folder))
        conn.send(
            (
                "ok",
                Seeded(
                    config_path=config_path,
                    so_ids=so_ids,
                    zd_ids=zd_ids,
                    zendesk_admin=sandbox.zendesk.admin_url,
                    superoffice_admin=sandbox.superoffice.admin_url,
                    now=sandbox.clock.now(),
                ),
            )
        )
        while True:
            try:
                command = conn.recv()
            except EOFError:
                return
            if command == "stop":
                conn.send(("ok", None))
                return
            if command == "reset_zendesk_counters":
                sandbox.zendesk.counters.reset()
                conn.send(("ok", None))
            elif command == "zendesk_report":
                routes = sandbox.zendesk.counts()["routes"]
                states = Counter(sandbox.zendesk.ticket_state(z) for z in zd_ids)
                conn.send(("ok", {"routes": routes, "states": dict(states)}))
            else:
                conn.send(("error", f"unknown command {command!r}"))
    except BaseException:
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", traceback.format_exc()))
        raise
    finally:
        sandbox.stop()
        conn.close()


class SandboxProcess:
    """A seeded `Sandbox` in a child process (spawned: it shares no memory with this one).

    Use it as a context manager: the child is stopped on exit whatever happened, asked
    first, then terminated, then killed.
    """

    def __init__(
        self,
        folder: Path,
        *,
        start: datetime,
        zendesk_config: Mapping[str, Any],
        soft_deletes: int,
        purges: int,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(child_conn, str(folder), start, dict(zendesk_config), soft_deletes, purges),
            name="bench-sandbox",
            daemon=True,  # multiprocessing's atexit handler ends it if we forget
        )
        self._child_conn: Connection | None = child_conn
        self.seeded: Seeded | None = None

    def start(self) -> Seeded:
        """Spawn the child and wait until it has seeded and serves."""
        self._process.start()
        # only the child holds its end now: if it dies, our recv sees EOF instead of hanging
        if self._child_conn is not None:
            self._child_conn.close()
            self._child_conn = None
        seeded = self._reply()
        assert isinstance(seeded, Seeded)
        self.seeded = seeded
        return seeded

    def reset_zendesk_counters(self) -> None:
        self._request("reset_zendesk_counters")

    def zendesk_report(self) -> tuple[dict[str, int], dict[str | None, int]]:
        """(requests per Zendesk route, how many seeded Zendesk tickets are in each state)."""
        report = self._request("zendesk_report")
        return dict(report["routes"]), dict(report["states"])

    def stop(self) -> None:
        """Ask the child to stop; terminate, then kill it, if it does not. Idempotent."""
        process = self._process
        if process.pid is None:  # never started
            return
        if process.is_alive():
            try:
                self._conn.send("stop")
                if self._conn.poll(STOP_TIMEOUT):
                    self._conn.recv()
            except (OSError, EOFError, ValueError):
                pass
            process.join(STOP_TIMEOUT)
        if process.is_alive():
            process.terminate()
            process.join(STOP_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()
        self._conn.close()
        if self._child_conn is not None:
            self._child_conn.close()
            self._child_conn = None

    def _request(self, command: str) -> Any:
        self._conn.send(command)
        return self._reply()

    def _reply(self) -> Any:
        waited = 0.0
        while not self._conn.poll(1.0):
            waited += 1.0
            if not self._process.is_alive():
                raise RuntimeError(f"sandbox child exited ({self._process.exitcode})")
            if waited >= REPLY_TIMEOUT:
                raise TimeoutError("sandbox child did not answer")
        try:
            status, value = self._conn.recv()
        except EOFError:
            self._process.join(STOP_TIMEOUT)
            raise RuntimeError(f"sandbox child exited ({self._process.exitcode})") from None
        if status != "ok":
            raise RuntimeError(f"sandbox child failed:\n{value}")
        return value

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RemoteClock:
    """This process's copy of the child's frozen `SimClock`; only this side moves it.

    `sleep` behaves as `SimClock.sleep` on a frozen clock (nothing for seconds <= 0, else
    advance by `timedelta(seconds=seconds)`) and makes the child advance by the same amount
    through one simulator's admin API (both simulators share the child's clock). Each
    answer carries the child's new time, which must equal ours: a drift raises at once.
    """

    def __init__(self, admin_url: str, start: datetime) -> None:
        self._url = admin_url + "/clock"
        self._now = start
        self._lock = threading.Lock()
        self._session = requests.Session()
        self.advances = 0

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def timestamp(self) -> float:
        return self.now().timestamp()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            response = self._session.post(self._url, json={"advance": seconds}, timeout=30)
            response.raise_for_status()
            self._now += timedelta(seconds=seconds)
            self.advances += 1
            remote = parse_iso(response.json()["now"])
            if remote != self._now:
                raise RuntimeError(f"clocks diverged: child {remote}, here {self._now}")

    def remote_now(self, admin_url: str | None = None) -> datetime:
        """The time a simulator's admin API reports (default: the one we advance)."""
        url = (admin_url + "/clock") if admin_url else self._url
        response = self._session.get(url, timeout=30)
        response.raise_for_status()
        return parse_iso(response.json()["now"])

    def close(self) -> None:
        self._session.close()
