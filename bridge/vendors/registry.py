"""The vendors bridge knows, and the side each one stands on.

The core never names a vendor: it gets the pair's `Sides` from here, through the
application layer (CLI, config, factory), and each adapter declares what differs."""

from __future__ import annotations

from bridge.core.model import Side, Sides

__all__ = ["SIDES", "SUPEROFFICE", "ZENDESK"]

SUPEROFFICE = Side("superoffice")
ZENDESK = Side("zendesk")
#: the ledger's order of the two sides: SuperOffice first, Zendesk second
SIDES = Sides(SUPEROFFICE, ZENDESK)
