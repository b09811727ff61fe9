"""The ledger: links, per-pair states and bases, the event log, the outbox, runs, cursors."""

from bridge.ledger.engine import LedgerURLError
from bridge.ledger.migrations import LATEST_VERSION, SchemaError, SidesMismatchError
from bridge.ledger.store import (
    ImportReport,
    LeaseHeldError,
    Ledger,
    LinkProblem,
    LinkRow,
    default_holder,
)

__all__ = [
    "LATEST_VERSION",
    "ImportReport",
    "LeaseHeldError",
    "Ledger",
    "LedgerURLError",
    "LinkProblem",
    "LinkRow",
    "SchemaError",
    "SidesMismatchError",
    "default_holder",
]
