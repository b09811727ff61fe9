"""Report rows, outcomes, latency and the end-of-period state over a ledger with exact times."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from bridge.ledger import Ledger
from bridge.report import Period, PeriodError, ReportMeta, build_document, write_report
from bridge.report.model import latency_stats, parse_moment
from bridge.report.svg import timeline_svg
from bridge.report.text import duration
from tests.report.conftest import T0, at

DAY1 = Period(parse_moment("2026-05-04", end=False), parse_moment("2026-05-04", end=True))
BOTH_DAYS = Period(DAY1.since, parse_moment("2026-05-05", end=True))


def _meta(period: Period) -> ReportMeta:
    return ReportMeta(period, T0, "ledger.db", "test")


def _records(ledger: Ledger, period: Period = DAY1) -> dict[int, dict[str, object]]:
    out = io.StringIO()
    write_report(ledger, _meta(period), "json", out)
    return {int(r["event_id"]): r for r in map(json.loads, out.getvalue().splitlines())}


def test_rows_are_observed_changes_and_bridge_writes(synthetic: Ledger) -> None:
    rows = _records(synthetic)
    assert sorted(rows) == [1, 3, 4, 6, 7, 8, 9, 10, 13]
    assert {k: rows[k]["record_type"] for k in (1, 3, 9)} == {
        1: "observed_change",
        3: "bridge_write",
        9: "bridge_write",
    }


def test_outcomes(synthetic: Ledger) -> None:
    rows = _records(synthetic)
    assert rows[1]["outcome"] == "confirmed"
    assert rows[1]["propagated_at"] == "2026-05-04T08:03:00.000000Z"
    # a hard delete copied as soft delete (confirmed) + purge (pending): pending, no latency
    assert rows[7]["outcome"] == "pending_retention"
    assert rows[7]["pending_until"] == "2026-05-18T08:33:00.000000Z"
    assert rows[7]["propagated_at"] is None
    assert rows[7]["latency_seconds"] is None
    assert rows[7]["purge_verification"] == "verified_gone"
    # the bridge's own purge waits for SuperOffice's retention job
    assert rows[9]["purge_verification"] == "pending_retention"
    assert rows[9]["pending_until"] == "2026-05-18T08:33:00.000000Z"
    assert rows[9]["source_event_id"] == 7
    assert rows[10]["outcome"] == "failed"
    assert rows[10]["outcome_detail"] == "403 no right"
    assert rows[13]["outcome"] == "held"
    assert rows[3]["purge_verification"] is None


def test_latency_is_vendor_time_to_confirmation(synthetic: Ledger) -> None:
    rows = _records(synthetic)
    assert rows[1]["latency_seconds"] == 180.0
    assert rows[4]["latency_seconds"] == 600.0
    latency = build_document(synthetic, _meta(DAY1), detail_rows=0).summary.latency
    assert (latency.count, latency.median, latency.p95, latency.maximum) == (2, 390.0, 600.0, 600.0)


def test_end_of_period_is_rebuilt_from_the_log(synthetic: Ledger) -> None:
    end = build_document(synthetic, _meta(DAY1), detail_rows=0).summary.end
    assert (end.conflicts, end.held_purges, end.failed_operations, end.pending_retention) == (
        1,
        1,
        1,
        1,
    )
    later = build_document(synthetic, _meta(BOTH_DAYS), detail_rows=0).summary.end
    assert later.conflicts == 0  # resolved on day 2
    before = Period(T0, at(45))
    early = build_document(synthetic, _meta(before), detail_rows=0).summary.end
    assert (early.failed_operations, early.held_purges, early.conflicts) == (1, 0, 0)


def test_detail_is_paged_but_the_summary_counts_everything(synthetic: Ledger) -> None:
    document = build_document(synthetic, _meta(DAY1), detail_rows=3)
    assert [r.event_id for r in document.detail] == [1, 3, 4]
    assert document.detail_truncated
    assert document.summary.rows == 9
    out = io.StringIO()
    write_report(synthetic, _meta(DAY1), "html", out, detail_rows=3)
    assert "Showing the first 3 of 9 rows" in out.getvalue()


def test_latency_statistics_by_hand() -> None:
    assert latency_stats([]).median is None
    assert latency_stats([5.0]) == latency_stats([5.0])
    stats = latency_stats([4.0, 1.0, 3.0, 2.0])
    assert (stats.median, stats.p95, stats.maximum) == (2.5, 4.0, 4.0)
    twenty = latency_stats([float(n) for n in range(1, 21)])
    assert (twenty.median, twenty.p95, twenty.maximum) == (10.5, 19.0, 20.0)
    odd = latency_stats([9.0, 1.0, 5.0])
    assert (odd.median, odd.p95) == (5.0, 9.0)


def test_dates() -> None:
    assert parse_moment("2026-05-04", end=False) == datetime(2026, 5, 4, tzinfo=UTC)
    assert parse_moment("2026-05-04", end=True) == datetime(2026, 5, 5, tzinfo=UTC)
    assert parse_moment("2026-05-04T10:00:00+02:00", end=True) == datetime(
        2026, 5, 4, 8, tzinfo=UTC
    )
    assert parse_moment("2026-05-04T10:00:00Z", end=False) == datetime(2026, 5, 4, 10, tzinfo=UTC)
    with pytest.raises(PeriodError, match="not a date"):
        parse_moment("2026-13-01", end=False)
    with pytest.raises(PeriodError, match="before it starts"):
        Period(DAY1.until, DAY1.since)
    assert DAY1.label == "2026-05-04-2026-05-04"
    assert BOTH_DAYS.last_day.isoformat() == "2026-05-05"


def test_durations_read_well() -> None:
    assert duration(None) == "n/a"
    assert duration(2.25) == "2.2 s"
    assert duration(125) == "2 min 5 s"
    assert duration(3 * 3600 + 61) == "3 h 1 min"
    assert duration(2 * 86400 + 7200) == "2 d 2 h"


def test_the_chart_groups_long_periods_and_has_no_reference() -> None:
    days = [T0.date() + timedelta(days=n) for n in range(400)]
    svg = timeline_svg(days, "zendesk", "Zendesk", {(days[0], "zendesk", "purge", "user"): 3})
    assert "per week" in svg
    assert "href" not in svg
    assert "url(" not in svg
    assert svg.count("<rect") == 1 + 1  # one bar, one legend key (the one series shown)
