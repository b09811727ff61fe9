"""Reports over a ledger filled by real syncs against both simulators."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib.resources import files

import jsonschema
from sqlmodel import col, select

from bridge.ledger.tables import Event, Operation
from bridge.report import Period, ReportMeta, build_document, write_report
from bridge.report.model import latency_stats
from bridge.report.render_csv import parse_row
from bridge.vendors.registry import SIDES
from tests.report.conftest import Synced

EVERYTHING = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def _meta(period: Period = EVERYTHING) -> ReportMeta:
    return ReportMeta(period, datetime(2026, 4, 1, tzinfo=UTC), "ledger.db", "test")


def _render(synced: Synced, fmt: str, period: Period = EVERYTHING) -> str:
    out = io.StringIO()
    write_report(synced.ledger, _meta(period), fmt, out)
    return out.getvalue()


def _events(synced: Synced) -> list[Event]:
    with synced.ledger.session() as session:
        return list(session.exec(select(Event).order_by(col(Event.id))))


def _operations(synced: Synced) -> dict[int, Operation]:
    with synced.ledger.session() as session:
        return {op.id: op for op in session.exec(select(Operation)) if op.id is not None}


def _json_records(synced: Synced, period: Period = EVERYTHING) -> list[dict[str, object]]:
    return [json.loads(line) for line in _render(synced, "json", period).splitlines()]


def test_every_transition_appears_once_and_counts_match_the_ledger(synced: Synced) -> None:
    events = _events(synced)
    ops = _operations(synced)
    expected = [
        e
        for e in events
        if (e.kind == "observed" and e.transition)
        or e.kind == "confirmed"
        or (e.kind == "pending_retention" and ops[e.operation_id or 0].status != "confirmed")
    ]
    records = _json_records(synced)
    assert [r["event_id"] for r in records] == [e.id for e in expected]
    assert len({r["event_id"] for r in records}) == len(records)
    # the scripted history: 3 + 4 user changes on day 0, 2 retention purges, plus bridge's copies
    observed = [e for e in events if e.kind == "observed" and e.transition]
    assert len(observed) >= 9
    expected_counts = Counter((e.side, e.transition, e.cause or "unknown") for e in expected)
    document = build_document(synced.ledger, _meta(), detail_rows=5)
    assert document.summary.counts == dict(expected_counts)
    assert document.summary.rows == len(expected)
    assert len(document.detail) == 5
    bridge_rows = [r for r in records if r["record_type"] == "bridge_write"]
    assert {r["cause"] for r in bridge_rows} == {"bridge"}
    confirmed_ops = [op for op in ops.values() if op.status == "confirmed"]
    assert len(bridge_rows) == len(confirmed_ops)


def test_outcomes_and_purge_proof_follow_the_history(synced: Synced) -> None:
    records = _json_records(synced)
    so = {s: i for i, (s, _z) in enumerate(synced.pairs)}
    zd = {z: i for i, (_s, z) in enumerate(synced.pairs)}

    def rows(pair: int, side: str, transition: str) -> list[dict[str, object]]:
        index = so if side == "superoffice" else zd
        return [
            r
            for r in records
            if r["side"] == side
            and index.get(int(str(r["ticket_id"]))) == pair
            and r["transition"] == transition
        ]

    # pair 1: a user purge in Zendesk, copied; SuperOffice purged by its retention job later
    (zd_purge,) = rows(1, "zendesk", "purge")
    assert zd_purge["cause"] == "user"
    assert zd_purge["purge_verification"] == "verified_gone"
    assert zd_purge["outcome"] == "confirmed"
    (so_purge,) = rows(1, "superoffice", "purge")
    assert so_purge["record_type"] == "bridge_write"
    assert so_purge["purge_verification"] == "verified_gone"
    assert so_purge["source_event_id"] == zd_purge["event_id"]
    # pair 2: a retention purge in SuperOffice is not copied by default: said so, with the reason
    (retention,) = rows(2, "superoffice", "purge")
    assert retention["cause"] == "retention"
    assert retention["outcome"] == "not_copied"
    assert "policy" in str(retention["outcome_detail"])
    # pair 4: a hard delete in Zendesk is one row there, two bridge writes in SuperOffice
    (hard,) = rows(4, "zendesk", "soft_delete+purge")
    assert hard["from_state"] == "active"
    assert hard["to_state"] == "purged"
    assert len(rows(4, "superoffice", "soft_delete")) == 1
    assert len(rows(4, "superoffice", "purge")) == 1
    # pair 5: both sides changed differently: a conflict, nothing copied, still open at the end
    (conflict,) = rows(5, "zendesk", "purge")
    assert conflict["outcome"] == "conflict"
    assert build_document(synced.ledger, _meta(), detail_rows=0).summary.end.conflicts == 1
    # pair 0: deleted then restored in Zendesk; both copied
    (deleted,) = rows(0, "zendesk", "soft_delete")
    assert deleted["outcome"] == "confirmed"
    assert deleted["actor_id"] == 4242  # Zendesk names who deleted
    assert [r["outcome"] for r in rows(0, "zendesk", "restore")] == ["confirmed"]


def test_latency_matches_hand_computed_values(synced: Synced) -> None:
    events = {e.id: e for e in _events(synced)}
    by_source: dict[int, list[Operation]] = {}
    for op in _operations(synced).values():
        if op.source_event_id is not None:
            by_source.setdefault(op.source_event_id, []).append(op)
    hand: list[float] = []
    for source, copies in by_source.items():
        event = events[source]
        if event.kind != "observed" or event.vendor_time is None:
            continue
        if all(op.status == "confirmed" for op in copies):
            done = max(op.finished_at for op in copies if op.finished_at is not None)
            hand.append((done - event.vendor_time).total_seconds())
    hand.sort()
    assert len(hand) >= 4
    n = len(hand)
    median = hand[n // 2] if n % 2 else (hand[n // 2 - 1] + hand[n // 2]) / 2
    p95 = hand[math.ceil(0.95 * n) - 1]
    summary = build_document(synced.ledger, _meta(), detail_rows=0).summary
    assert summary.latency.count == n
    assert summary.latency.median == median
    assert summary.latency.p95 == p95
    assert summary.latency.maximum == hand[-1]
    assert latency_stats(hand) == summary.latency
    per_row = sorted(
        float(str(r["latency_seconds"]))
        for r in _json_records(synced)
        if r["latency_seconds"] is not None
    )
    assert per_row == hand


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.refs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action", "data", "poster"):
                self.refs.append(f"{tag}.{name}={value}")
            if name == "style" and value and "url(" in value:
                self.refs.append(f"{tag}.style={value}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_and_holds_no_subject(synced: Synced) -> None:
    html = _render(synced, "html")
    parser = _Refs()
    parser.feed(html)
    parser.close()
    assert parser.refs == []
    assert "url(" not in html
    assert "@import" not in html
    assert parser.tags["script"] == 0
    assert parser.tags["link"] == 0
    assert parser.tags["svg"] == 2  # a chart per side
    assert parser.tags["rect"] > 0
    assert "Jane Roe" not in html
    assert "Confidential" not in html
    text = " ".join(parser.text)
    assert "Open at the end of the period" in text
    assert "Conflicts" in text


def test_markdown_has_the_sections_and_no_subject(synced: Synced) -> None:
    markdown = _render(synced, "md")
    for heading in ("## Summary", "## Timeline", "## Detail", "## Runs"):
        assert heading in markdown
    assert "Jane Roe" not in markdown


def test_csv_and_json_round_trip(synced: Synced) -> None:
    records = _json_records(synced)
    schema = json.loads(
        files("bridge").joinpath("data/report-record.schema.json").read_text(encoding="utf-8")
    )
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for record in records:
        validator.validate(record)
    text = _render(synced, "csv")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == tuple(schema["required"])
    assert [parse_row(row, SIDES) for row in reader] == records
    assert "Jane Roe" not in text


def test_a_period_without_events_gives_an_empty_valid_report(synced: Synced) -> None:
    quiet = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC))
    assert _render(synced, "json", quiet) == ""
    assert _render(synced, "csv", quiet).splitlines() == [
        ",".join(
            json.loads(files("bridge").joinpath("data/report-record.schema.json").read_text())[
                "required"
            ]
        )
    ]
    html = _render(synced, "html", quiet)
    assert "No deletion, restore or purge was detected in this period." in html
    document = build_document(synced.ledger, _meta(quiet), detail_rows=10)
    assert document.summary.rows == 0
    assert document.summary.runs == 0
    assert document.summary.latency.count == 0


def test_a_period_splits_the_history(synced: Synced) -> None:
    records = _json_records(synced)
    split = datetime(2026, 3, 10, tzinfo=UTC)
    first = _json_records(synced, Period(EVERYTHING.since, split))
    second = _json_records(synced, Period(split, EVERYTHING.until))
    assert first
    assert second
    assert first + second == records
