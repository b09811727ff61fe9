"""The layers hold: the import contracts in pyproject.toml, and a core that names no vendor.

The contracts (`[tool.importlinter]`) say who may import whom: CLI → application → vendors |
ledger → core (docs/architecture.md). The second check reads the source of the neutral
packages for any vendor's name: the core, the run, the ledger and the shared simulator
machinery speak of sides, and each vendor declares what differs on its adapter.
"""

from __future__ import annotations

import ast
import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
NEUTRAL = ("core", "run", "ledger", "sandbox")
VENDOR_NAMES = ("superoffice", "zendesk")
#: the one place a neutral module may name a vendor: the step that renames the columns of
#: a ledger written before the sides were neutral (a historical fact, not a branch)
LEGACY_MARK = "legacy schema"


def test_the_import_contracts_hold() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert code == 0, out.getvalue()[-4000:]


def _modules() -> list[Path]:
    return sorted(p for name in NEUTRAL for p in (ROOT / "bridge" / name).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_neutral_module_names_no_vendor(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("bridge.vendors")]
    named = [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), 1)
        if any(vendor in line.lower() for vendor in VENDOR_NAMES) and LEGACY_MARK not in line
    ]
    assert named == [], f"{path.relative_to(ROOT)} names a vendor"
