"""Vendor answers are checked against the shapes the adapters rely on before they are believed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from bridge.core.contract import OutcomeUnknownError, TransientError
from bridge.vendors import wire
from bridge.vendors.superoffice import wire as superoffice_wire
from bridge.vendors.zendesk import wire as zendesk_wire

GOOD_EXPORT: dict[str, Any] = {
    "tickets": [{"id": 7, "status": "open", "updated_at": "2026-03-02T09:00:00Z"}],
    "after_cursor": "abc",
    "end_of_stream": True,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tickets": "x"}, "tickets"),
        ({"tickets": [{"id": "7", "status": "open"}]}, "tickets.0.id"),
        ({"tickets": [{"id": 0, "status": "open"}]}, "tickets.0.id"),
        ({"tickets": [{"id": 7, "status": "archived"}]}, "tickets.0.status"),
        ({"tickets": [{"status": "open"}]}, "tickets.0.id"),
        ({"tickets": [7]}, "tickets.0"),
        ({"end_of_stream": "yes"}, "end_of_stream"),
        ({"after_cursor": 12}, "after_cursor"),
    ],
)
def test_an_export_page_that_does_not_fit_is_a_failed_read_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    body = {**GOOD_EXPORT, **change}
    with pytest.raises(TransientError, match=re.escape(f"'{field}'")) as caught:
        _export(body, "api/v2/incremental/tickets/cursor")
    assert "api/v2/incremental/tickets/cursor" in str(caught.value)
    assert not isinstance(caught.value, OutcomeUnknownError)


def _answer(body: bytes) -> requests.Response:
    answer = requests.Response()
    answer.status_code = 200
    answer._content = body
    return answer


def _export(body: object, endpoint: str = "export") -> zendesk_wire.ExportPage:
    return wire.decode(zendesk_wire.EXPORT_PAGE, _answer(json.dumps(body).encode()), endpoint)


@pytest.mark.parametrize("missing", ["tickets", "after_cursor", "end_of_stream"])
def test_an_export_page_missing_a_field_is_refused(missing: str) -> None:
    body = {k: v for k, v in GOOD_EXPORT.items() if k != missing}
    with pytest.raises(TransientError, match=f"'{missing}'"):
        _export(body)


@pytest.mark.parametrize(
    ("ticket", "field"),
    [
        ({"id": True, "status": "open"}, "tickets.0.id"),
        ({"id": 10**30, "status": "open"}, "tickets.0.id"),
        ({"id": -5, "status": "open"}, "tickets.0.id"),
        ({"id": 7, "status": "open", "external_id": True}, "tickets.0.external_id"),
        ({"id": 7, "status": "open", "updated_at": 5}, "tickets.0.updated_at"),
        (None, "tickets.0"),
    ],
)
def test_an_export_ticket_is_read_as_strictly_as_every_other_answer(
    ticket: object, field: str
) -> None:
    with pytest.raises(TransientError, match=re.escape(f"'{field}'")):
        _export({**GOOD_EXPORT, "tickets": [ticket]})


@pytest.mark.parametrize("body", [b"{bad", b"", b"[]", b"null"])
def test_an_export_body_that_is_no_page_is_a_failed_read(body: bytes) -> None:
    with pytest.raises(TransientError, match="export: "):
        wire.decode(zendesk_wire.EXPORT_PAGE, _answer(body), "export")


def test_an_export_ticket_keeps_only_what_the_adapter_reads() -> None:
    ticket = {"id": 7, "status": "deleted", "subject": "SCRUBBED", "description": "x" * 5000}
    page = _export({**GOOD_EXPORT, "tickets": [ticket], "count": 1})
    row = page.tickets[0]
    assert (row.get("id"), row.get("status"), row.get("subject")) == (7, "deleted", "SCRUBBED")
    assert row.get("description") is None  # the content is skipped, never held


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(TransientError):
        wire.check(zendesk_wire.ShowManyAnswer, body, "api/v2/tickets/show_many")


def test_extra_fields_are_ignored_and_a_good_page_passes() -> None:
    page = _export({**GOOD_EXPORT, "count": 1, "new": {}})
    assert page.tickets[0].id == 7


def test_a_write_answer_that_does_not_fit_is_an_unknown_outcome() -> None:
    with pytest.raises(OutcomeUnknownError, match="'job_status"):
        wire.check(
            zendesk_wire.JobStatusAnswer, {"job_status": {"id": 5}}, "destroy_many", write=True
        )


def test_a_job_status_outside_the_known_ones_is_refused() -> None:
    body = {"job_statuses": [{"id": "a", "status": "exploded"}]}
    with pytest.raises(TransientError, match=re.escape("'job_statuses.0.status'")):
        wire.check(zendesk_wire.JobStatusesAnswer, body, "job_statuses/show_many")


def test_a_superoffice_archive_without_a_value_list_is_refused() -> None:
    with pytest.raises(TransientError, match="'value'"):
        wire.check(superoffice_wire.SuperOfficeArchivePage, {"value": {"a": 1}}, "Archive/Ticket")


def test_the_recorded_zendesk_shapes_are_read() -> None:
    """Null-valued ticket fields, the show_many envelope and both cursor directions, as
    recorded (zenpy cassettes), are read, not refused."""
    ticket = {
        "id": 3861,
        "external_id": None,
        "type": None,
        "priority": None,
        "assignee_id": None,
        "subject": "test",
        "status": "new",
        "updated_at": "2023-09-18T23:24:43Z",
    }
    many = wire.check(
        zendesk_wire.ShowManyAnswer,
        {"tickets": [ticket], "next_page": None, "previous_page": None, "count": 1},
        "show_many",
    )
    assert many.tickets[0].external_id is None
    export = _export(
        {
            "tickets": [{**ticket, "generated_timestamp": 1695052663}],
            "after_cursor": "MTcwNzI3MTc0MS4wfHw0MDQ1fA==",
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": True,
        },
        "export",
    )
    assert export.before_cursor is None
    page = wire.check(
        zendesk_wire.DeletedTicketsPage,
        {
            "deleted_tickets": [{"id": 1, "deleted_at": "2024-01-01T00:00:00Z"}],
            "meta": {"has_more": False, "after_cursor": "b", "before_cursor": "a"},
            "links": {
                "prev": "http://x/?page%5Bbefore%5D=a",
                "next": "http://x/?page%5Bafter%5D=b",
            },
        },
        "deleted_tickets",
    )
    assert page.meta is not None
    assert page.meta.before_cursor == "a"
    assert page.links is not None
    assert page.links.next is not None
