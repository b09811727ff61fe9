"""The timeline as an inline SVG bar chart: no script, no external reference, no font file.

One group of bars per day (per week beyond `_DAILY_LIMIT` days, per month beyond
`_WEEKLY_LIMIT`), one bar per side, so the chart stays readable for any period.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from html import escape

__all__ = ["SIDE_COLOURS", "bucket_label", "timeline_svg"]

SIDE_COLOURS = {"superoffice": "#1f6fb2", "zendesk": "#2e8b57", "unknown": "#888888"}
_DAILY_LIMIT = 120
_WEEKLY_LIMIT = 700
_WIDTH, _HEIGHT = 900, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 16, 44


def _bucket(day: date, span: int) -> date:
    if span <= _DAILY_LIMIT:
        return day
    if span <= _WEEKLY_LIMIT:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def bucket_label(span: int) -> str:
    if span <= _DAILY_LIMIT:
        return "day"
    return "week" if span <= _WEEKLY_LIMIT else "month"


def timeline_svg(
    days: Sequence[date], sides: Sequence[str], per_day: Mapping[tuple[date, str], int]
) -> str:
    """Bars of transitions per day (or week, or month) per side."""
    span = len(days)
    buckets: list[date] = []
    for day in days:
        key = _bucket(day, span)
        if not buckets or buckets[-1] != key:
            buckets.append(key)
    counts: Counter[tuple[date, str]] = Counter()
    for (day, side), n in per_day.items():
        counts[(_bucket(day, span), side)] += n
    top = max(counts.values(), default=0) or 1
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(1, len(buckets))
    bar = max(0.5, slot * 0.8 / max(1, len(sides)))
    unit = bucket_label(span)
    parts = [
        f'<svg class="timeline" viewBox="0 0 {_WIDTH} {_HEIGHT}" width="100%" role="img" '
        f'aria-label="Transitions per {unit} and side">',
        f"<title>Transitions per {unit} and side</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = _TOP + plot_h * (1 - fraction)
        value = round(top * fraction)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value}</text>'
        )
    for i, key in enumerate(buckets):
        x0 = _LEFT + i * slot + slot * 0.1
        for j, side in enumerate(sides):
            n = counts.get((key, side), 0)
            if not n:
                continue
            h = plot_h * n / top
            colour = SIDE_COLOURS.get(side, "#888888")
            parts.append(
                f'<rect x="{x0 + j * bar:.2f}" y="{_TOP + plot_h - h:.2f}" width="{bar:.2f}" '
                f'height="{h:.2f}" fill="{colour}"><title>{escape(key.isoformat())} '
                f"{escape(side)}: {n}</title></rect>"
            )
    step = max(1, len(buckets) // 8)
    for i in range(0, len(buckets), step):
        x = _LEFT + i * slot + slot / 2
        parts.append(
            f'<text x="{x:.1f}" y="{_HEIGHT - _BOTTOM + 16}" text-anchor="middle" '
            f'font-size="11">{escape(buckets[i].isoformat())}</text>'
        )
    for j, side in enumerate(sides):
        x = _LEFT + j * 130
        colour = SIDE_COLOURS.get(side, "#888888")
        parts.append(
            f'<rect x="{x}" y="{_HEIGHT - 16}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="{_HEIGHT - 6}" font-size="12">{escape(side)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
