"""`bridge worker`: pairs synced by Procrastinate workers on the ledger's PostgreSQL."""
