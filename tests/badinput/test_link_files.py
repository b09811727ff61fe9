"""Link files for `bridge link import FILE`: what is accepted, and what is refused.

What `bridge link import --help`, `bridge/links.py` and `Ledger.import_links` promise:
all or nothing; a header naming the columns `superoffice_id` and `zendesk_id` (any case,
any order, spaces around, a UTF-8 BOM, other columns beside them); ids of ASCII digits
within each vendor's range (SuperOffice 32-bit, Zendesk 64-bit; spaces around a value are
trimmed); blank lines carry nothing; rows already linked the same way are skipped; an id
repeated in the file (an exact duplicate row too) or already linked to another partner is
a problem. A refused file names every bad line (`FILE:line N: ...`), exits 2 and imports
nothing: `bridge link list --json` and the ledger are as they were.

The ids in a file are tokens (`{s1}`, `{z1}`, ...) replaced by ids of the case's own, so
that every accepted file imports links no other case has, and every refused file would
import new links if it were wrongly taken.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from tests.badinput.conftest import (
    Expect,
    Verdict,
    World,
    ids,
    ledger_dump,
    run_bridge,
    sandbox_world,
    unique_ids,
)

HEADER = "superoffice_id,zendesk_id\n"
#: a file given as one of these is not written: a folder is made, or nothing at all
DIRECTORY, MISSING = "<a directory>", "<no file>"
#: the pair `world.link(3)` linked first (SuperOffice 1, Zendesk 1)
LINKED_SO, LINKED_ZD = 1, 1


@dataclass(frozen=True)
class LinkCase:
    id: str
    content: str | bytes
    #: refused: words the error must hold (the line numbers, what is wrong)
    words: tuple[str, ...] = ()
    #: accepted: the (superoffice, zendesk) token pairs that must be linked afterwards
    accepted: tuple[tuple[str, str], ...] | None = None


def accepted(case_id: str, content: str | bytes, *pairs: tuple[str, str]) -> LinkCase:
    return LinkCase(f"accepted-{case_id}", content, accepted=pairs)


def refused(case_id: str, content: str | bytes, *words: str) -> LinkCase:
    return LinkCase(f"refused-{case_id}", content, words=words)


S1Z1 = (("s1", "z1"),)
BOTH = (("s1", "z1"), ("s2", "z2"))

CASES = unique_ids(
    [
        # --- acceptable input -------------------------------------------------------------
        accepted("utf8-bom", b"\xef\xbb\xbf" + (HEADER + "{s1},{z1}\n{s2},{z2}\n").encode(), *BOTH),
        accepted(
            "crlf-line-ends", "superoffice_id,zendesk_id\r\n{s1},{z1}\r\n{s2},{z2}\r\n", *BOTH
        ),
        accepted("blank-lines", HEADER + "\n{s1},{z1}\n\n   \n{s2},{z2}\n\n\n", *BOTH),
        accepted("header-case-and-spaces", " SuperOffice_ID , Zendesk_ID \n{s1},{z1}\n", *S1Z1),
        accepted("columns-swapped", "zendesk_id,superoffice_id\n{z1},{s1}\n", *S1Z1),
        accepted("extra-named-column", "superoffice_id,zendesk_id,note\n{s1},{z1},moved\n", *S1Z1),
        accepted("spaces-around-ids", HEADER + " {s1} , {z1} \n", *S1Z1),
        accepted("largest-ids", HEADER + "{smax},{zmax}\n", ("smax", "zmax")),
        accepted("header-only", HEADER),
        accepted("row-already-linked-the-same-way", HEADER + "{linked_so},{linked_zd}\n"),
        # --- refused: the file as a whole -------------------------------------------------
        refused("empty-file", b"", "empty"),
        refused("a-directory", DIRECTORY, "directory"),
        refused("missing-file", MISSING, "no such file"),
        refused("wrong-headers", "so,zd\n{s1},{z1}\n", "line 1", "superoffice_id"),
        refused("missing-header", "{s1},{z1}\n{s2},{z2}\n", "line 1", "header"),
        refused(
            "non-utf8-byte-in-header",
            b"superoffice_id,zendesk_id,r\xe9f\n{s1},{z1},x\n",
            "UTF-8",
            "line 1",
        ),
        refused(
            "non-utf8-byte-in-row",
            b"superoffice_id,zendesk_id,note\n{s1},{z1},ok\n{s2},{z2},caf\xe9\n",
            "UTF-8",
            "line 3",
        ),
        refused("utf16-file", (HEADER + "{s1},{z1}\n").encode("utf-16"), "UTF-8", "line 1"),
        # --- refused: bad lines -----------------------------------------------------------
        refused("nul-byte-in-id", HEADER + "{s1},{z1}\n{s2},5\x002\n", "line 3"),
        refused("duplicate-row", HEADER + "{s1},{z1}\n{s1},{z1}\n", "line 3", "line 2"),
        refused(
            "superoffice-ticket-in-two-rows",
            HEADER + "{s1},{z1}\n{s1},{z2}\n",
            "line 3",
            "superoffice_id",
        ),
        refused(
            "zendesk-ticket-in-two-rows", HEADER + "{s1},{z1}\n{s2},{z1}\n", "line 3", "zendesk_id"
        ),
        refused(
            "already-linked-to-another-ticket",
            HEADER + "{linked_so},{z1}\n",
            "line 2",
            "already linked",
        ),
        refused("extra-field-in-row", HEADER + "{s1},{z1}\n{s2},{z2},{z3}\n", "line 3"),
        refused("missing-field-in-row", HEADER + "{s1},{z1}\n{s2}\n", "line 3"),
        refused("unclosed-quote", HEADER + '{s1},"{z1}\n{s2},{z2}\n', "line 2"),
        refused("header-again-midway", HEADER + "{s1},{z1}\n" + HEADER + "{s2},{z2}\n", "line 3"),
        refused("bom-midway", HEADER + "{s1},{z1}\n\ufeff{s2},{z2}\n", "line 3"),
        refused("superoffice-id-over-32-bit", HEADER + "2147483648,{z1}\n", "line 2", "range"),
        refused("zendesk-id-over-64-bit", HEADER + "{s1},9223372036854775808\n", "line 2", "range"),
        refused("id-10e30", HEADER + "{s1},1" + "0" * 30 + "\n", "line 2", "range"),
        refused("id-with-inner-space", HEADER + "{s1} 7,{z1}\n", "line 2"),
        refused("id-with-leading-plus", HEADER + "+{s1},{z1}\n", "line 2", "+"),
        refused("id-with-underscore", HEADER + "1_{s1},{z1}\n", "line 2", "_"),
        refused("id-in-arabic-indic-digits", HEADER + "\u0661\u0662\u0663,{z1}\n", "line 2"),
        refused("id-empty", HEADER + ",{z1}\n", "line 2", "empty"),
        refused(
            "many-bad-lines",
            HEADER + "".join(f"x{n},y{n}\n" for n in range(250)),
            "line 2",
            "300 more",
        ),
    ]
)


def _tokens(index: int) -> dict[str, int]:
    """Ids of the case's own: SuperOffice 10,000 + 10 n + k, Zendesk 5,000,000,000 + ..."""
    found = {"linked_so": LINKED_SO, "linked_zd": LINKED_ZD}
    for k in range(1, 4):
        found[f"s{k}"] = 10_000 + 10 * index + k
        found[f"z{k}"] = 5_000_000_000 + 10 * index + k
    found["smax"], found["zmax"] = 2**31 - 1, 2**63 - 1
    return found


def _fill(content: str | bytes, tokens: dict[str, int]) -> bytes:
    data = content.encode("utf-8") if isinstance(content, str) else content
    for name, value in tokens.items():
        data = data.replace(f"{{{name}}}".encode(), str(value).encode())
        # the same token in a UTF-16 file
        data = data.replace(f"{{{name}}}".encode("utf-16-le"), str(value).encode("utf-16-le"))
    return data


def _link_list(world: World) -> list[tuple[int, int, str]]:
    """`bridge link list --json` (in this process: the check is not the case under test)."""
    result = CliRunner().invoke(
        main, ["--config", str(world.config_path), "link", "list", "--json"]
    )
    assert result.exit_code == 0, result.output
    return [(r["superoffice_id"], r["zendesk_id"], r["origin"]) for r in json.loads(result.stdout)]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, module_ledger_url: str | None
) -> Iterator[World]:
    """The world of every case, on each backend in turn."""
    folder = tmp_path_factory.mktemp("links") / "bridge"
    with sandbox_world(folder, ledger_url=module_ledger_url) as world:
        assert world.link(3)[0] == (LINKED_SO, LINKED_ZD)
        yield world


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_link_file(world: World, case: LinkCase, tmp_path: Path) -> None:
    tokens = _tokens(CASES.index(case))
    path = tmp_path / "links.csv"
    if case.content == DIRECTORY:
        path.mkdir()
    elif case.content != MISSING:
        path.write_bytes(_fill(case.content, tokens))
    ledger = world.config().ledger_url
    before, listed = ledger_dump(ledger), _link_list(world)
    world.reset_counters()
    outcome = run_bridge(world.config_path, "link", "import", str(path), cwd=tmp_path)
    after, now_listed = ledger_dump(ledger), _link_list(world)
    shown = "" if case.content in (DIRECTORY, MISSING) else repr(_fill(case.content, tokens))
    context = [f"file: {shown[:200]}"] if shown else []
    if case.accepted is None:
        verdict = Verdict(outcome, Expect(code=2, words=case.words, in_block=True))
        verdict.exit_code()
        verdict.message()
        verdict.same_dump(before, after)
        if now_listed != listed:
            verdict.add("imported", f"`link list` changed: {sorted(set(now_listed) - set(listed))}")
    else:
        verdict = Verdict(outcome, Expect(code=0, stdout_words=("Imported",)))
        verdict.exit_code()
        verdict.message()
        wanted = {(tokens[so], tokens[zd]) for so, zd in case.accepted}
        added = {(so, zd) for so, zd, _origin in now_listed} - {(so, zd) for so, zd, _ in listed}
        if added != wanted:
            verdict.add("links", f"expected new links {sorted(wanted)}, got {sorted(added)}")
        if not wanted:
            verdict.same_dump(before, after, what="nothing to import, yet the ledger changed")
    verdict.no_writes(world.sandbox)
    promise = "nothing imported, no writes" if case.accepted is None else "the links imported"
    verdict.conclude(*context, promise=promise)


def test_every_token_is_replaced() -> None:
    """A guard on the corpus itself: no case leaves a `{token}` in its file."""
    for index, case in enumerate(CASES):
        if case.content in (DIRECTORY, MISSING):
            continue
        left = re.findall(rb"\{[a-z_0-9]+\}", _fill(case.content, _tokens(index)))
        assert not left, f"{case.id}: {left}"
