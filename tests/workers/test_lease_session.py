"""A PostgreSQL lease ends with its holder's session: a run SIGKILLed on another machine
does not keep its pair waiting until the lease expires (a SQLite lease still does)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from bridge.ledger import LeaseHeldError, Ledger
from bridge.vendors.registry import SIDES

_HOLD = """
import sys, time
from datetime import timedelta
from bridge.ledger import Ledger
from bridge.vendors.registry import SIDES
ledger = Ledger.open(sys.argv[1], sides=SIDES)
ledger.acquire_lease("sync", "another-host:4242", timedelta(hours=1))
print("held", flush=True)
time.sleep(600)
"""


def test_a_lease_dies_with_its_holders_session(ledger_url: str) -> None:
    Ledger.open(ledger_url, sides=SIDES).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, ledger_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with Ledger.open(ledger_url, sides=SIDES) as ledger:
            # alive on "another host": its pid cannot be judged, and it is not expired
            with pytest.raises(LeaseHeldError):
                ledger.acquire_lease("sync", "me:1", timedelta(minutes=5))
            holder.send_signal(signal.SIGKILL)
            holder.wait(10)
            if ledger_url.startswith("sqlite"):
                with pytest.raises(LeaseHeldError):  # until it expires, in an hour
                    ledger.acquire_lease("sync", "me:1", timedelta(minutes=5))
                return
            # the server saw the connection end; its lock went with it
            for _ in range(50):
                try:
                    taken = ledger.acquire_lease("sync", "me:1", timedelta(minutes=5))
                    break
                except LeaseHeldError:
                    time.sleep(0.1)
            else:
                raise AssertionError("the dead holder's lease was never taken over")
            assert taken.holder == "me:1"
            # and now it is this holder's, alive
            with pytest.raises(LeaseHeldError), Ledger.open(ledger_url, sides=SIDES) as other:
                other.acquire_lease("sync", "me:2", timedelta(minutes=5))
            ledger.release_lease("sync", "me:1")
            with Ledger.open(ledger_url, sides=SIDES) as other:
                assert other.acquire_lease("sync", "me:2", timedelta(minutes=5)).holder == "me:2"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
