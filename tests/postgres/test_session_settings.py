"""The settings every ledger session on PostgreSQL starts with (bridge/ledger/dialect.py)."""

from __future__ import annotations

from bridge.ledger import Ledger
from bridge.vendors.registry import SIDES


def test_a_ledger_session_waits_30_s_for_a_lock_and_never_jit_compiles(
    postgres_url: str,
) -> None:
    # JIT compiled a staged batch's statements for ~200 ms each, for 1 ms of work (issue 18)
    ledger = Ledger.open(postgres_url, sides=SIDES)
    try:
        with ledger.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "30s"
    finally:
        ledger.close()
