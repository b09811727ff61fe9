"""The vendors bridge knows, and the side each one stands on.

The core never names a vendor: it gets the pair's `Sides` from here, through the
application layer (CLI, config, factory), and each adapter declares what differs."""

from __future__ import annotations

from bridge.core.model import Side, Sides
from bridge.vendors import superoffice, zendesk

__all__ = ["MAX_TICKET_ID", "SIDES", "SUPEROFFICE", "ZENDESK"]

SUPEROFFICE = superoffice.SIDE
ZENDESK = zendesk.SIDE
#: the ledger's order of the two sides: SuperOffice first, Zendesk second
SIDES = Sides(SUPEROFFICE, ZENDESK)
#: the largest ticket id each vendor issues
MAX_TICKET_ID: dict[Side, int] = {
    SUPEROFFICE: superoffice.MAX_TICKET_ID,
    ZENDESK: zendesk.MAX_TICKET_ID,
}
