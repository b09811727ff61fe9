"""The ledger's read side for audit reports (filled in by the report work)."""

from __future__ import annotations

from sqlalchemy import Engine

__all__ = ["AuditStore"]


class AuditStore:
    """Mixin for `Ledger`: streaming, read-only queries for `bridge report`."""

    engine: Engine
