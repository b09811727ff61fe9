"""Headless Chromium for the report's layout tests: a page at a given width, probed for
horizontal overflow and for every column, and a printed PDF.

Chromium will not make a window narrower than 500 px, so the report is shown in an iframe
of the wanted width inside a small harness page; media queries inside the iframe see the
iframe's width, as a phone's browser would. The probe is the harness's script: the report
itself stays script-free. The harness reads the report's DOM from the iframe (same origin
under --allow-file-access-from-files) and writes what it measured into its own DOM, which
--dump-dom prints.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "PDFTOTEXT", "PdfWords", "pdf_words", "print_pdf", "probe"]

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)
PDFTOTEXT = shutil.which("pdftotext")
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio")
_TIMEOUT = 90

_HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><iframe id="f" src="{src}"
 style="border:0;width:{width}px;height:{height}px"></iframe>
<script>
const f = document.getElementById('f');
f.addEventListener('load', () => {{
  const d = f.contentDocument, root = d.documentElement, win = f.contentWindow;
  const out = {{scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
               innerWidth: win.innerWidth, tables: []}};
  for (const t of d.querySelectorAll('table.wide')) {{
    const head = t.querySelector('thead');
    const heads = [...t.querySelectorAll('thead th')].map(th => th.textContent);
    const row = t.querySelector('tbody tr');
    const cells = row ? [...row.children].map(td => {{
      const r = td.getBoundingClientRect();
      return {{label: td.dataset.label, display: win.getComputedStyle(td).display,
              left: r.left, right: r.right, width: r.width,
              before: win.getComputedStyle(td, '::before').content}};
    }}) : [];
    out.tables.push({{heads, headShown: win.getComputedStyle(head).display !== 'none',
                     right: t.getBoundingClientRect().right, cells}});
  }}
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}});
</script></body></html>
"""


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *_FLAGS, *args],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=True,
    )


def probe(report: Path, width: int, screenshot: Path, height: int = 1600) -> dict[str, Any]:
    """The report at `width` CSS px: what the probe measured, and a screenshot."""
    harness = report.with_name(f"harness-{width}.html")
    harness.write_text(
        _HARNESS.format(src=report.name, width=width, height=height), encoding="utf-8"
    )
    done = _chromium(
        "--allow-file-access-from-files",
        f"--window-size={max(width, 500)},{height}",
        f"--screenshot={screenshot}",
        "--dump-dom",
        harness.as_uri(),
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, f"the probe wrote nothing: {done.stderr[-2000:]}"
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    result: dict[str, Any] = json.loads(text.replace("&amp;", "&"))
    return result


def print_pdf(report: Path, pdf: Path) -> None:
    """Print the report as Chromium prints it (its @page and print styles)."""
    _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", report.as_uri())
    assert pdf.exists()
    assert pdf.stat().st_size > 0


@dataclass(frozen=True)
class PdfWords:
    """Each page's size and the words on it, with their horizontal extent."""

    pages: list[tuple[float, float]]
    words: list[tuple[int, str, float, float]]  # page, word, xMin, xMax

    def text(self) -> str:
        return " ".join(word for _, word, _, _ in self.words)


def pdf_words(pdf: Path) -> PdfWords:
    """Every word of `pdf` and where it stands (pdftotext -bbox)."""
    assert PDFTOTEXT is not None
    done = subprocess.run(
        [PDFTOTEXT, "-bbox", str(pdf), "-"],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
        check=True,
    )
    pages: list[tuple[float, float]] = []
    words: list[tuple[int, str, float, float]] = []
    for line in done.stdout.splitlines():
        page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', line)
        if page:
            pages.append((float(page.group(1)), float(page.group(2))))
            continue
        word = re.search(
            r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)"[^>]*>(.*)</word>', line
        )
        if word:
            words.append((len(pages), word.group(3), float(word.group(1)), float(word.group(2))))
    return PdfWords(pages, words)
