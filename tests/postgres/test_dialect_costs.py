"""What the PostgreSQL dialect does so that a large sync is not paid for twice on the server
(bridge/ledger/dialect.py; found by bench/large_tenant.py --backends, issue 18)."""

from __future__ import annotations

from bridge.ledger import Ledger
from bridge.vendors.registry import SIDES

BATCH = 2_000
BATCHES = 10


def test_a_ledger_session_waits_30_s_for_a_lock_and_never_jit_compiles(
    postgres_url: str,
) -> None:
    # JIT compiled a staged batch's statements for ~200 ms each, for 1 ms of work
    ledger = Ledger.open(postgres_url, sides=SIDES)
    try:
        with ledger.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "30s"
    finally:
        ledger.close()


def test_a_staging_table_emptied_batch_after_batch_does_not_grow(postgres_url: str) -> None:
    # autovacuum never vacuums a TEMP table: rows deleted batch after batch stayed as dead
    # tuples that every later statement scanned; emptied by the dialect, it keeps one
    # batch's size
    ledger = Ledger.open(postgres_url, sides=SIDES)
    dialect = ledger.dialect
    try:
        with ledger.engine.connect() as connection:
            sizes = []
            for batch in range(BATCHES):
                with connection.begin():
                    dialect.create_staging(connection, "probe_stage", "n BIGINT NOT NULL")
                    dialect.clear_staging(connection, "probe_stage")
                    rows = [(batch * BATCH + n,) for n in range(BATCH)]
                    dialect.bulk_insert(connection, "probe_stage", ("n",), rows)
                    count = connection.exec_driver_sql("SELECT count(*) FROM probe_stage")
                    assert count.scalar() == BATCH
                    size = connection.exec_driver_sql("SELECT pg_relation_size('probe_stage')")
                    sizes.append(int(size.scalar() or 0))
                    dialect.clear_staging(connection, "probe_stage")
            assert sizes[0] > 0
            assert max(sizes) <= sizes[0], sizes
    finally:
        ledger.close()
