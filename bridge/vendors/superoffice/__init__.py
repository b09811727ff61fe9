"""SuperOffice Service: everything bridge knows of it (adapter, auth, wire shapes, simulator)."""

from bridge.core.model import Side

#: the side SuperOffice stands on in every pair
SIDE = Side("superoffice")
#: SuperOffice ticket ids are 32-bit signed integers
MAX_TICKET_ID = 2**31 - 1
