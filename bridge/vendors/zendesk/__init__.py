"""Zendesk Support: everything bridge knows of it (adapter, wire shapes, simulator)."""

from bridge.core.model import Side

#: the side Zendesk stands on in every pair
SIDE = Side("zendesk")
#: Zendesk ticket ids are 64-bit integers
MAX_TICKET_ID = 2**63 - 1
