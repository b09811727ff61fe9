"""Shell completion, as the README documents it: click's, under the command's own name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _ticket_bridge() -> str:
    found = shutil.which("ticket-bridge", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("ticket-bridge is not installed beside this interpreter")
    return found


def test_the_documented_bash_line_completes_commands_and_options() -> None:
    assert 'eval "$(_TICKET_BRIDGE_COMPLETE=bash_source ticket-bridge)"' in README.read_text(
        encoding="utf-8"
    )
    program = _ticket_bridge()
    source = subprocess.run(
        [program],
        env={**os.environ, "_TICKET_BRIDGE_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "_ticket_bridge_completion()" in source.stdout
    words = subprocess.run(
        [program],
        env={
            **os.environ,
            "_TICKET_BRIDGE_COMPLETE": "bash_complete",
            "COMP_WORDS": "ticket-bridge sync --dry",
            "COMP_CWORD": "2",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "plain,--dry-run" in words.stdout.splitlines()
