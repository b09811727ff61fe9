"""What SuperOffice's answers say beyond their status: an error text in either casing
(`bridge/vendors/superoffice/errors.py`), and no rate-limit signal (none is documented)."""

from __future__ import annotations

import pytest

from bridge.vendors.http import VendorHTTPError
from bridge.vendors.superoffice.adapter import SuperOfficeAdapter
from bridge.vendors.superoffice.auth import SOTicketAuth
from bridge.vendors.superoffice.errors import error_code
from tests.adapters.scripted import Reply, ScriptedServer, Sleeps, client_for


def test_error_code_reads_either_casing(server: ScriptedServer) -> None:
    server.script["/a"] = [Reply(403, {"Error": "No right", "ErrorType": "Forbidden"})]
    server.script["/b"] = [Reply(400, {"ErrorType": "ArgumentError"})]
    server.script["/c"] = [Reply(404, {"error": "NotFound"})]
    server.script["/d"] = [Reply(500, ["not", "an", "object"])]
    client = client_for(server, Sleeps())
    assert error_code(client.request("GET", "a", ok=(403,))) == "No right"
    assert error_code(client.request("GET", "b", ok=(400,))) == "ArgumentError"
    assert error_code(client.request("GET", "c", ok=(404,))) == "NotFound"
    assert error_code(client.request("GET", "d", ok=(500,))) is None


def test_the_adapter_reads_superoffice_errors_through_its_client(server: ScriptedServer) -> None:
    host, port = server.server_address[:2]
    server.script["/Cust1/api/v1/Agents/Ticket/SetDeletedStatusByIds"] = [
        Reply(403, {"Error": "No right", "ErrorType": "Forbidden"})
    ]
    adapter = SuperOfficeAdapter(
        f"http://{host!s}:{port}/Cust1", tenant="Cust1", auth=SOTicketAuth("t", "a")
    )
    with pytest.raises(VendorHTTPError) as info:
        adapter.set_deleted([1])
    assert info.value.error == "No right"
    assert adapter.http.last_rate_limit is None
