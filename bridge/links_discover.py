"""Links from data: Zendesk tickets whose `external_id` names a SuperOffice ticket.

A link is a promise that two tickets are one, and a wrong one makes bridge copy a
deletion to the wrong ticket; so only unambiguous, verified pairs are linked. Two Zendesk
tickets naming the same SuperOffice id, or a pair that clashes with an existing link, are
ambiguous; an id that SuperOffice does not know is dangling; both are reported, never
linked. A SuperOffice id that could not be checked this time is left for the next run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from bridge.config import LinkSettings
from bridge.core.batches import chunked
from bridge.core.contract import Adapter
from bridge.core.model import State
from bridge.ledger import Ledger, LinkRow
from bridge.vendors.registry import SIDES, SUPEROFFICE, ZENDESK

__all__ = ["Ambiguous", "Dangling", "DiscoverReport", "discover_links"]

ORIGIN = "external_id"


@dataclass(frozen=True, slots=True)
class Ambiguous:
    superoffice_id: int
    zendesk_ids: tuple[int, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Dangling:
    zendesk_id: int
    superoffice_id: int


@dataclass
class DiscoverReport:
    pattern: str
    dry_run: bool
    #: Zendesk tickets read from the export
    scanned: int = 0
    #: of those, with an external_id that fits the pattern
    matched: int = 0
    #: (superoffice_id, zendesk_id) linked now (or that would be, in a dry run)
    linked: list[tuple[int, int]] = field(default_factory=list)
    already_linked: int = 0
    ambiguous: list[Ambiguous] = field(default_factory=list)
    dangling: list[Dangling] = field(default_factory=list)
    #: (zendesk_id, superoffice_id) whose SuperOffice ticket could not be checked this time
    unresolved: list[tuple[int, int]] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return bool(self.ambiguous or self.dangling)


def _named_ids(zendesk: Adapter, links: LinkSettings, report: DiscoverReport) -> dict[int, int]:
    """Zendesk id → the SuperOffice id its external_id names, from the whole export."""
    named: dict[int, int] = {}
    seen: set[int] = set()
    for page in zendesk.changes(None):
        for view in page.views:
            seen.add(view.ticket_id)
            superoffice_id = links.parse_external_id(view.external_id)
            if superoffice_id is None or view.state is State.PURGED:
                named.pop(view.ticket_id, None)  # a later row wins: the id was cleared
            else:
                named[view.ticket_id] = superoffice_id
        if page.complete:
            break
    report.scanned = len(seen)
    report.matched = len(named)
    return named


def _existing_clashes(
    ledger: Ledger, candidates: dict[int, int], report: DiscoverReport
) -> dict[int, int]:
    """Drop pairs already linked (counted) or clashing with a link (ambiguous)."""
    by_zendesk = ledger.links_for_tickets(ZENDESK, candidates.values())
    by_superoffice = ledger.links_for_tickets(SUPEROFFICE, candidates)
    fresh: dict[int, int] = {}
    for superoffice_id, zendesk_id in sorted(candidates.items()):
        so_link = by_superoffice.get(superoffice_id)
        zd_link = by_zendesk.get(zendesk_id)
        if so_link and so_link.ticket(ZENDESK) == zendesk_id:
            report.already_linked += 1
        elif so_link:
            report.ambiguous.append(
                Ambiguous(
                    superoffice_id,
                    (zendesk_id,),
                    f"superoffice {superoffice_id} is already linked to zendesk "
                    f"{so_link.ticket(ZENDESK)}",
                )
            )
        elif zd_link:
            report.ambiguous.append(
                Ambiguous(
                    superoffice_id,
                    (zendesk_id,),
                    f"zendesk {zendesk_id} is already linked to superoffice "
                    f"{zd_link.ticket(SUPEROFFICE)}",
                )
            )
        else:
            fresh[superoffice_id] = zendesk_id
    return fresh


def _verify(
    superoffice: Adapter, candidates: dict[int, int], report: DiscoverReport
) -> list[tuple[int, int]]:
    """Keep the pairs whose SuperOffice ticket exists (in any state but purged)."""
    ids = sorted(candidates)
    verified: list[tuple[int, int]] = []
    for chunk in chunked(ids, max(1, superoffice.batch_limit)):
        found = superoffice.lookup(chunk)
        for superoffice_id in chunk:
            zendesk_id = candidates[superoffice_id]
            view = found.get(superoffice_id)
            if view is None:
                report.unresolved.append((zendesk_id, superoffice_id))
            elif view.state is State.PURGED:
                report.dangling.append(Dangling(zendesk_id, superoffice_id))
            else:
                verified.append((superoffice_id, zendesk_id))
    return verified


def discover_links(
    ledger: Ledger,
    zendesk: Adapter,
    superoffice: Adapter,
    links: LinkSettings,
    *,
    dry_run: bool = False,
) -> DiscoverReport:
    """Read the Zendesk export, match external ids, verify in SuperOffice, link the rest.

    Raises `AdapterError` when Zendesk cannot be read or a SuperOffice lookup fails as a
    whole; nothing is linked then.
    """
    report = DiscoverReport(pattern=links.external_id_pattern, dry_run=dry_run)
    named = _named_ids(zendesk, links, report)
    by_superoffice: dict[int, list[int]] = defaultdict(list)
    for zendesk_id, superoffice_id in named.items():
        by_superoffice[superoffice_id].append(zendesk_id)
    candidates: dict[int, int] = {}
    for superoffice_id, zendesk_ids in sorted(by_superoffice.items()):
        if len(zendesk_ids) > 1:
            listed = ", ".join(str(i) for i in sorted(zendesk_ids))
            report.ambiguous.append(
                Ambiguous(
                    superoffice_id,
                    tuple(sorted(zendesk_ids)),
                    f"superoffice {superoffice_id} is named by zendesk {listed}",
                )
            )
        else:
            candidates[superoffice_id] = zendesk_ids[0]
    fresh = _existing_clashes(ledger, candidates, report)
    verified = _verify(superoffice, fresh, report)
    if verified and not dry_run:
        result = ledger.import_links(_rows(verified), origin=ORIGIN)
        if not result.ok:  # a link added meanwhile by someone else: report, link nothing
            for problem in result.problems:
                superoffice_id, zendesk_id = verified[problem.line - 1]
                report.ambiguous.append(Ambiguous(superoffice_id, (zendesk_id,), problem.message))
            return report
    report.linked = verified
    return report


def _rows(pairs: Iterable[tuple[int, int]]) -> Iterable[LinkRow]:
    for line, (superoffice_id, zendesk_id) in enumerate(pairs, 1):
        yield LinkRow.of(line, SIDES, {SUPEROFFICE: superoffice_id, ZENDESK: zendesk_id})
