"""The legend: every code a report shows, and what it means to a reader.

A data-protection officer reading `soft_delete+purge` or `pending_retention` should not need
the documentation at hand. The renderers show codes verbatim (so that a report, its CSV and
its JSON say the same words) and end with this legend; `legend(document)` lists the fixed
vocabulary and the run counters that the report's runs carry.
"""

from __future__ import annotations

from collections.abc import Iterable

from bridge.ledger.audit import RunFacts
from bridge.report.model import Document
from bridge.report.text import label

__all__ = ["GROUPS", "counter_meaning", "legend"]

#: (title, ((code, meaning), ...)) in the order a reader meets them
GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Sides (where a transition happened)",
        (
            ("superoffice", "SuperOffice Service: its ticket ids; its actors are associates"),
            ("zendesk", "Zendesk Support: its ticket ids; its actors are users"),
        ),
    ),
    (
        "Record types",
        (
            ("observed_change", "a change bridge saw on a vendor, by a person or a vendor job"),
            ("bridge_write", "a change bridge made to copy one, verified by re-reading the ticket"),
        ),
    ),
    (
        "Transitions",
        (
            ("soft_delete", "active → soft_deleted: deleted, still restorable"),
            ("restore", "soft_deleted → active: brought back"),
            ("purge", "soft_deleted → purged: gone for good"),
            ("soft_delete+purge", "active → purged in one step (a hard delete), one row"),
        ),
    ),
    (
        "States",
        (
            ("active", "a live ticket"),
            ("soft_deleted", "deleted, restorable until the vendor erases it"),
            ("purged", "erased for good: the vendor no longer has it"),
        ),
    ),
    (
        "Causes (why it happened)",
        (
            ("user", "an agent, admin or API user of the vendor"),
            ("retention", "the vendor's own retention job: a soft-deleted ticket's time ran out"),
            ("archive_retention", "a Zendesk deletion schedule removed an archived ticket"),
            ("bridge", "bridge, copying a change from the other side"),
            ("unknown", "the vendor does not say"),
        ),
    ),
    (
        "Outcomes (what became of the copy to the other side)",
        (
            ("confirmed", "copied and verified on the other side"),
            ("pending_retention", "copied as far as the vendor allows; its retention job ends it"),
            ("in_progress", "planned or sent, not yet verified"),
            ("held", "a purge held back by the per-run purge cap (max_purges_per_run)"),
            ("failed", "the write failed for good"),
            ("superseded", "dropped: the link was settled another way"),
            ("not_copied", "deliberately not copied: policy or direction"),
            ("conflict", "both sides changed differently: a person decides"),
            ("divergence", "the sides differ with no agreed state: a person decides"),
            ("not_planned", "no copy planned: the other side already matched"),
            ("resolved", "a conflict or divergence settled since (by whom, when: in the row)"),
        ),
    ),
    (
        "Purge verification (the proof a purge happened)",
        (
            ("verified_gone", "bridge read the ticket as purged, at the time shown"),
            ("pending_retention", "waiting for the vendor's retention job, due by the time shown"),
        ),
    ),
    (
        "Erasure (ticket story)",
        (
            ("verified_gone", "erased, and bridge has read it as purged"),
            ("pending_retention", "bridge copied the purge; the vendor's retention job is due"),
            ("due", "soft-deleted: the vendor erases it by the date shown; not yet verified"),
            ("past_due", "the date has passed, not yet verified: the next sweep reads it"),
            ("not_deleted", "active: no erasure due"),
            ("unknown", "bridge has not read this side yet"),
        ),
    ),
    (
        "Operator actions (recorded with who did them)",
        (
            ("resolve", "`bridge conflicts resolve`: a person settled a conflict or divergence"),
            ("allow_mass_purge", "`bridge sync --allow-mass-purge`: a person lifted the purge cap"),
            ("migrate", "`bridge migrate`: a person ran a migration (no purge cap)"),
        ),
    ),
    (
        "Ticket story events",
        (
            ("conflict", "both sides changed differently since they last agreed"),
            ("divergence", "the sides differ and there is no agreed state yet"),
            ("resolved", "a conflict, divergence or failure settled (by a person when named)"),
            ("held", "a purge held by the per-run purge cap"),
            ("failed", "a write failed for good"),
            ("skipped", "a change deliberately not copied (policy or direction)"),
            ("anomaly", "a purged ticket seen alive again (an id reused, or a vendor error)"),
            ("override", "a run started with an operator's override (see operator actions)"),
        ),
    ),
    (
        "Run kinds",
        (
            ("sync", "a scheduled reconciliation run (`bridge sync`)"),
            ("migrate", "a one-off migration (`bridge migrate`)"),
            ("hints", "a targeted run of the tickets webhooks named (`bridge serve`)"),
        ),
    ),
    (
        "Run outcomes",
        (
            ("running", "still running (or its process died; the next run says)"),
            ("converged", "both sides agree"),
            ("failures", "some writes failed; the next run retries them"),
            (
                "waiting",
                "a vendor account other pairs share had no calls left for this run: "
                "its worker job comes back with the account's turn",
            ),
            ("attention", "a person must look: conflicts, held purges, failed writes"),
            ("unavailable", "a vendor could not be read: nothing was decided or written"),
            ("interrupted", "stopped (SIGTERM, Ctrl-C) after finishing its batch"),
            ("failed", "ended by an error"),
            ("aborted", "its process died; a later run found it and settled what it left"),
        ),
    ),
)

_DECISIONS = {
    "agree": "links found in agreement",
    "apply": "links with a copy planned",
    "conflict": "links in conflict",
    "divergence": "links diverging",
    "unknown": "links left undecided (a side not read)",
    "skip": "changes deliberately not copied",
}
_PLAIN = {
    "planned": "operations planned",
    "confirmed": "operations confirmed by re-reading the target",
    "failed": "operations that failed for good",
    "retry": "operations that failed and are retried",
    "pending_retention": "purges left to the vendor's retention job",
    "purges_held": "purges held by the purge cap",
    "purges_refused": "purges refused: the target was active",
    "soft_deletes_refused": "soft deletes refused: the target would have purged instead",
    "jobs_followed": "vendor jobs of earlier runs followed to their end",
    "resent_after_reread": "writes sent again once a re-read showed they had not happened",
    "unknown_outcome": "writes whose answer was lost",
    "awaiting_outcome": "writes whose answer is still awaited",
    "stuck_operations": "operations failing or unconfirmed too long",
}
_PER_SIDE = {
    "changes_read": "changes read from its change stream",
    "changed": "tickets whose state changed",
    "lookups": "tickets looked up by id (never read before)",
    "swept": "tickets checked by the vanished-ticket sweep",
    "read_errors": "reads that failed",
}


def counter_meaning(key: str) -> str | None:
    """What a run's counter counts (`zendesk.changes_read`, `decision.apply`,
    `superoffice.purge.sent`); None for a counter this version does not know."""
    if key in _PLAIN:
        return _PLAIN[key]
    head, _, rest = key.partition(".")
    if head == "decision":
        return _DECISIONS.get(rest)
    if rest in _PER_SIDE:
        return f"{label(head)}: {_PER_SIDE[rest]}"
    transition, _, tail = rest.partition(".")
    if tail == "sent" and transition:
        return f"{label(head)}: {transition} writes sent"
    return None


def _counters(runs: Iterable[RunFacts]) -> list[tuple[str, str]]:
    keys = sorted({key for run in runs for key, n in run.counts.items() if n})
    return [(key, counter_meaning(key) or "a counter of the run") for key in keys]


def legend(document: Document) -> list[tuple[str, list[tuple[str, str]]]]:
    """The legend's groups, each (title, [(code, meaning), ...]): the fixed vocabulary,
    then the run counters this document's runs carry."""
    groups = [(title, list(codes)) for title, codes in GROUPS]
    runs = document.story.runs if document.story is not None else document.runs
    counters = _counters(runs)
    if counters:
        groups.append(("Run counters", counters))
    return groups
