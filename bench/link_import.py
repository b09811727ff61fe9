"""Benchmark: `bridge link import` of 1,000,000 rows (target: < 60 s, < 300 MB peak).

Run: `.venv/bin/python bench/link_import.py [ROWS]`. Prints a markdown table.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import python, run_child, table


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        csv = home / "links.csv"
        with csv.open("w", encoding="utf-8") as out:
            out.write("superoffice_id,zendesk_id\n")
            for n in range(1, rows + 1):
                out.write(f"{n},{n + 10_000_000}\n")
        config = home / "bridge.toml"
        run_child([python(), "-m", "bridge", "init", "--dir", folder])
        base = [python(), "-m", "bridge", "--config", str(config)]
        first = run_child([*base, "link", "import", str(csv)])
        again = run_child([*base, "link", "import", str(csv)])
        goal_s, goal_mb = 60, 300
        print(
            table(
                ["run", "rows", "wall s", "peak MB", f"goal < {goal_s} s, < {goal_mb} MB"],
                [
                    [
                        "first import",
                        f"{rows:,}",
                        f"{first[0]:.1f}",
                        f"{first[1]:.0f}",
                        "met" if first[0] < goal_s and first[1] < goal_mb else "MISSED",
                    ],
                    [
                        "re-import (no-op)",
                        f"{rows:,}",
                        f"{again[0]:.1f}",
                        f"{again[1]:.0f}",
                        "met" if again[0] < goal_s and again[1] < goal_mb else "MISSED",
                    ],
                ],
            )
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
