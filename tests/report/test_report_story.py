"""Filters, one ticket's story (`--ticket`), the `resolved` outcome, the legend and the chart's
range: over the synthetic ledger (exact times) and a ledger filled by real syncs."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from bridge.cli.exitcodes import ExitCode
from bridge.ledger import Ledger
from bridge.report import Period, ReportMeta, RowFilter, build_document, write_report
from bridge.report.model import parse_moment
from bridge.report.text import actor_text
from tests.report.conftest import Synced, at, run

DAY1 = Period(parse_moment("2026-05-04", end=False), parse_moment("2026-05-04", end=True))
EVERYTHING = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
RETENTION = {"superoffice": timedelta(days=14), "zendesk": timedelta(days=30)}


def _ids(ledger: Ledger, row_filter: RowFilter, period: Period = DAY1) -> list[int]:
    out = io.StringIO()
    meta = ReportMeta(period, at(0), "ledger.db", "test", filters=row_filter)
    write_report(ledger, meta, "json", out)
    return [json.loads(line)["event_id"] for line in out.getvalue().splitlines()]


def test_filters_choose_rows_by_side_transition_and_cause(synthetic: Ledger) -> None:
    assert _ids(synthetic, RowFilter()) == [1, 3, 4, 6, 7, 8, 9, 10, 13]
    assert _ids(synthetic, RowFilter(sides=frozenset({"zendesk"}))) == [1, 6, 7, 10, 13]
    # a hard delete (soft_delete+purge) is a purge and a soft delete
    assert _ids(synthetic, RowFilter(transitions=frozenset({"purge"}))) == [7, 9, 13]
    assert _ids(synthetic, RowFilter(causes=frozenset({"bridge"}))) == [3, 6, 8, 9]
    both = RowFilter(sides=frozenset({"superoffice"}), transitions=frozenset({"purge"}))
    assert _ids(synthetic, both) == [9]
    user_deletes = RowFilter(transitions=frozenset({"soft_delete"}), causes=frozenset({"user"}))
    assert _ids(synthetic, user_deletes) == [1, 4, 7, 10]
    either = RowFilter(causes=frozenset({"bridge", "user"}), sides=frozenset({"superoffice"}))
    assert _ids(synthetic, either) == [3, 4, 8, 9]


def test_filters_apply_to_the_summary_and_are_named(synthetic: Ledger) -> None:
    row_filter = RowFilter(sides=frozenset({"zendesk"}), causes=frozenset({"user"}))
    meta = ReportMeta(DAY1, at(0), "ledger.db", "test", filters=row_filter)
    document = build_document(synthetic, meta, detail_rows=100)
    assert document.summary.rows == 4
    assert {side for side, _, _ in document.summary.counts} == {"zendesk"}
    out = io.StringIO()
    write_report(synthetic, meta, "html", out)
    assert "rows with side zendesk; cause user" in out.getvalue()
    assert "For the whole ledger: the filters choose rows only." in out.getvalue()


def test_a_conflict_settled_later_is_resolved_not_open(synthetic: Ledger) -> None:
    """Link 7: a change that led to a conflict, resolved by Carol ten minutes later."""
    synthetic.bulk_append(
        "link", [{"id": 7, "first_id": 107, "second_id": 207, "origin": "csv", "created_at": at(0)}]
    )
    synthetic.bulk_append(
        "event",
        [
            {
                "id": 16,
                "at": at(70),
                "run_id": 1,
                "link_id": 7,
                "kind": "observed",
                "side": "zendesk",
                "ticket_id": 207,
                "transition": "restore",
                "from_state": "soft_deleted",
                "to_state": "active",
                "cause": "user",
                "actor_id": 9,
                "vendor_time": at(69),
            },
            {
                "id": 17,
                "at": at(70),
                "run_id": 1,
                "link_id": 7,
                "kind": "conflict",
                "detail": "both changed",
            },
            {
                "id": 18,
                "at": at(80),
                "link_id": 7,
                "kind": "resolved",
                "detail": "resolved by hand: prefer superoffice",
                "operator": "Carol",
            },
        ],
    )
    rows = {
        int(r["event_id"]): r
        for r in map(json.loads, _render(synthetic, "json", DAY1).splitlines())
    }
    assert rows[16]["outcome"] == "resolved"
    assert (rows[16]["operator"], rows[16]["operator_action"]) == ("Carol", "resolve")
    assert rows[16]["outcome_detail"] == (
        "conflict resolved 2026-05-04T09:20:00.000000Z: resolved by hand: prefer superoffice"
    )
    # open at the end of a period that ends between the two; settled in one that ends after
    during = ReportMeta(Period(DAY1.since, at(75)), at(0), "l", "t")
    after = ReportMeta(Period(DAY1.since, at(85)), at(0), "l", "t")
    assert build_document(synthetic, during, detail_rows=0).summary.end.conflicts == 2
    assert build_document(synthetic, after, detail_rows=0).summary.end.conflicts == 1  # link 5
    assert "conflict" not in build_document(synthetic, after, detail_rows=0).summary.outcomes


def _render(ledger: Ledger, fmt: str, period: Period, **meta: object) -> str:
    out = io.StringIO()
    write_report(ledger, ReportMeta(period, at(0), "ledger.db", "test", **meta), fmt, out)  # type: ignore[arg-type]
    return out.getvalue()


# --- one ticket's story ---------------------------------------------------------------


def _story(synced: Synced, pair: int, generated: datetime) -> ReportMeta:
    so_id, _ = synced.pairs[pair]
    with synced.ledger.audit_view() as view:
        ((link_id, _, _),) = [hit for hit in view.links_of_ticket(so_id) if hit[1] == so_id]
    return ReportMeta(
        EVERYTHING,
        generated,
        "ledger.db",
        "test",
        filters=RowFilter(link_id=link_id),
        retention=RETENTION,
    )


def test_the_story_of_a_purge_copied_and_verified_on_both_sides(synced: Synced) -> None:
    """Pair 1: Ann deletes then purges it in Zendesk; bridge copies both to SuperOffice,
    whose retention job removes it 15 days later, verified by bridge."""
    meta = _story(synced, 1, datetime(2026, 4, 1, tzinfo=UTC))
    document = build_document(synced.ledger, meta, detail_rows=0)
    story = document.story
    assert story is not None
    so_id, zd_id = synced.pairs[1]
    assert story.tickets == {"superoffice": so_id, "zendesk": zd_id}
    steps = [(r.side, r.transition, r.cause) for r in story.rows]
    assert steps == [
        ("zendesk", "soft_delete", "user"),
        ("superoffice", "soft_delete", "bridge"),
        ("zendesk", "purge", "user"),
        ("superoffice", "purge", "bridge"),
    ]
    # Zendesk names who deleted it; its purge comes without an actor (no audit log here)
    assert [r.actor_id for r in story.rows if r.cause == "user"] == [4242, None]
    assert actor_text(story.rows[2]) == "a Zendesk user (Zendesk does not say which)"
    erasure = {e.side: e for e in story.erasure}
    assert erasure["zendesk"].status == "verified_gone"
    assert erasure["superoffice"].status == "verified_gone"
    so_purge = story.rows[3]
    assert erasure["superoffice"].verified_event == so_purge.event_id
    assert erasure["superoffice"].verified_at == so_purge.purge_verified_at
    # the runs it rests on: exactly those that recorded its events, and the range says so
    run_ids = {r.run_id for r in story.rows}
    assert {run.id for run in story.runs} >= run_ids
    assert document.run_range is not None
    assert document.run_range.count == len(story.runs)
    assert (document.run_range.first, document.run_range.last) == (
        min(run.id for run in story.runs),
        max(run.id for run in story.runs),
    )


def test_the_story_gives_the_erasure_due_dates(synced: Synced) -> None:
    """Pair 3: deleted in SuperOffice (associate 77), copied to Zendesk; SuperOffice's
    retention job removed it 15 days later (verified), and Zendesk's 30-day scrub is due
    30 days after bridge's soft delete there."""
    before_scrub = datetime(2026, 3, 20, tzinfo=UTC)
    document = build_document(synced.ledger, _story(synced, 3, before_scrub), detail_rows=0)
    assert document.story is not None
    erasure = {e.side: e for e in document.story.erasure}
    assert erasure["superoffice"].status == "verified_gone"
    zendesk = erasure["zendesk"]
    assert zendesk.state == "soft_deleted"
    assert zendesk.status == "due"
    assert zendesk.deleted_at is not None
    assert zendesk.due == zendesk.deleted_at + timedelta(days=30)
    zd_delete = next(
        r for r in document.story.rows if r.side == "zendesk" and r.transition == "soft_delete"
    )
    assert zendesk.deleted_at == zd_delete.vendor_time
    after_scrub = zendesk.due + timedelta(days=1)
    later = build_document(synced.ledger, _story(synced, 3, after_scrub), detail_rows=0)
    assert later.story is not None
    assert {e.side: e.status for e in later.story.erasure}["zendesk"] == "past_due"
    # the HTML tells it, with the read each transition rests on
    out = io.StringIO()
    write_report(synced.ledger, _story(synced, 3, before_scrub), "html", out)
    html = out.getvalue()
    so_id, zd_id = synced.pairs[3]
    assert f"bridge erasure record: SuperOffice {so_id} / Zendesk {zd_id}" in html
    assert "+ 30 days, Zendesk&#x27;s scrub of deleted tickets" in html
    assert "SuperOffice associate 77" in html
    # which read showed it: SuperOffice's change stream
    read = r"run \d+ read the SuperOffice ticket in SuperOffice(&#x27;|')s change stream"
    assert re.search(read + " at 2026-03-02", html)
    assert "Ledger runs this record covers" in html


def test_the_story_by_either_id_through_the_command_line(synced: Synced) -> None:
    so_id, zd_id = synced.pairs[1]
    home = synced.config_path.parent
    by_zendesk = run(home, "--ticket", f"zendesk:{zd_id}", "--format", "md", "-o", "-")
    by_superoffice = run(home, "--ticket", f"superoffice:{so_id}", "--format", "md", "-o", "-")
    assert by_zendesk[0] == by_superoffice[0] == 0, by_zendesk[2]
    title = f"# bridge erasure record: SuperOffice {so_id} / Zendesk {zd_id}"
    assert by_zendesk[1].startswith(title)
    assert by_superoffice[1].startswith(title)
    code, _, err = run(home, "--ticket", "999999")
    assert code == ExitCode.USAGE
    assert "no linked ticket with id 999999" in err
    code, _, err = run(home, "--ticket", "mars:1")
    assert code == ExitCode.USAGE
    assert "'mars' is not a side" in err


# --- the legend and the chart -------------------------------------------------------------


class _Codes(HTMLParser):
    """Every `<span class="code">` value and every legend `<dt>`."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: set[str] = set()
        self.legend: set[str] = set()
        self._into: set[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "span" and ("class", "code") in attrs:
            self._into = self.codes
        elif tag == "dt":
            self._into = self.legend

    def handle_data(self, data: str) -> None:
        if self._into is not None:
            self._into.add(data.strip())
            self._into = None


def test_every_code_in_the_report_is_in_the_legend(synced: Synced) -> None:
    for meta in (
        ReportMeta(EVERYTHING, datetime(2026, 4, 1, tzinfo=UTC), "ledger.db", "test"),
        _story(synced, 5, datetime(2026, 4, 1, tzinfo=UTC)),
    ):
        html = _render_synced(synced, meta, "html")
        parser = _Codes()
        parser.feed(html)
        assert parser.codes, "the report shows codes"
        assert parser.codes <= parser.legend, parser.codes - parser.legend
        assert "a counter of the run" not in html  # every counter a run kept is known
        markdown = _render_synced(synced, meta, "md")
        in_tables = {
            code
            for line in markdown.splitlines()
            if line.startswith("| ")
            for code in re.findall(r"`([^`]+)`", line)
        }
        in_legend = set(re.findall(r"^- `([^`]+)`:", markdown, re.MULTILINE))
        assert in_tables <= in_legend, in_tables - in_legend


def test_every_change_names_its_actor(synced: Synced) -> None:
    from bridge.report.model import records

    with synced.ledger.audit_view() as view:
        rows = list(records(view.transitions(EVERYTHING.since, EVERYTHING.until)))
    actors = {(r.side, r.cause, actor_text(r)) for r in rows}
    assert all(text for _, _, text in actors)
    assert ("superoffice", "user", "SuperOffice associate 77") in actors
    assert ("zendesk", "user", "Zendesk user 4242") in actors
    assert ("superoffice", "retention", "SuperOffice's retention job") in actors
    assert {text for _, cause, text in actors if cause == "bridge"} == {"bridge (its API user)"}


def _render_synced(synced: Synced, meta: ReportMeta, fmt: str) -> str:
    out = io.StringIO()
    write_report(synced.ledger, meta, fmt, out)
    return out.getvalue()


def test_the_chart_spans_the_data_unless_a_period_was_asked_for(synced: Synced) -> None:
    """The history runs from 2026-03-02 to 2026-03-17; a default --until of today would
    have drawn a year of empty days."""
    meta = ReportMeta(
        Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
        datetime(2026, 12, 1, tzinfo=UTC),
        "ledger.db",
        "test",
    )
    document = build_document(synced.ledger, meta, detail_rows=0)
    days = document.chart_days()
    with_rows = sorted({key[0] for key in document.summary.per_day})
    assert (days[0], days[-1]) == (with_rows[0], with_rows[-1])
    assert len(days) < 30
    asked = ReportMeta(
        meta.period, meta.generated_at, "ledger.db", "test", since_given=True, until_given=True
    )
    asked_days = build_document(synced.ledger, asked, detail_rows=0).chart_days()
    assert (asked_days[0], asked_days[-1]) == (meta.period.first_day, meta.period.last_day)
    html = _render_synced(synced, meta, "html")
    assert "Transitions per day</text>" in html  # the y axis
    assert "Day detected (UTC)</text>" in html  # the x axis
    # split by transition and cause: a series per pair, in the chart's legend
    for series in ("soft_delete · user", "soft_delete · bridge", "purge · retention"):
        assert series in html


def test_a_migration_names_its_operator_on_the_writes_it_planned(synthetic: Ledger) -> None:
    """Run 2, a migration Mia ran, plans and confirms a soft delete on link 6's SuperOffice
    ticket: the bridge write names her; run 1's writes (a scheduled sync) name nobody."""
    synthetic.bulk_append(
        "run",
        [
            {
                "id": 2,
                "kind": "migrate",
                "holder": "t",
                "started_at": at(90),
                "ended_at": at(95),
                "outcome": "converged",
                "counts": "{}",
                "operator": "Mia",
            }
        ],
    )
    synthetic.bulk_append(
        "operation",
        [
            {
                "id": 7,
                "key": "6:superoffice:soft_delete:1",
                "link_id": 6,
                "target": "superoffice",
                "ticket_id": 106,
                "transition": "soft_delete",
                "step": 0,
                "base_version": 1,
                "cause": "user",
                "status": "confirmed",
                "run_id": 2,
                "finished_at": at(92),
                "created_at": at(90),
                "updated_at": at(92),
            }
        ],
    )
    synthetic.bulk_append(
        "event",
        [
            {
                "id": 20,
                "at": at(90),
                "run_id": 2,
                "link_id": 6,
                "kind": "planned",
                "side": "superoffice",
                "transition": "soft_delete",
                "operation_id": 7,
            },
            {
                "id": 21,
                "at": at(91),
                "run_id": 2,
                "link_id": 6,
                "kind": "sent",
                "side": "superoffice",
                "transition": "soft_delete",
                "operation_id": 7,
            },
            {
                "id": 22,
                "at": at(92),
                "run_id": 2,
                "link_id": 6,
                "kind": "confirmed",
                "side": "superoffice",
                "ticket_id": 106,
                "transition": "soft_delete",
                "from_state": "active",
                "to_state": "soft_deleted",
                "cause": "bridge",
                "operation_id": 7,
            },
        ],
    )
    rows = {
        int(r["event_id"]): r
        for r in map(json.loads, _render(synthetic, "json", DAY1).splitlines())
    }
    assert (rows[22]["operator"], rows[22]["operator_action"]) == ("Mia", "migrate")
    assert {(rows[n]["operator"], rows[n]["operator_action"]) for n in (3, 6, 8, 9)} == {
        (None, None)
    }
