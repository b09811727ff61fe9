"""The timeline as inline SVG bar charts: no script, no external reference, no font file.

One chart per side; one stacked bar per day (per week beyond `_DAILY_LIMIT` days, per month
beyond `_WEEKLY_LIMIT`), split by transition and cause: a hue per transition, lighter for
causes further from a person (user, bridge, retention, archive retention, unknown). Axis
titles say what is counted and how time is bucketed. The days come from the caller
(`Document.chart_days`): the data's range unless a period was asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from html import escape

__all__ = ["bucket_label", "series_colour", "timeline_svg"]

_DAILY_LIMIT = 120
_WEEKLY_LIMIT = 700
_WIDTH, _HEIGHT = 900, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 12, 16, 60
#: hue per transition, lightness per cause
_HUES = {"soft_delete": 28, "restore": 140, "purge": 355, "soft_delete+purge": 275}
_LIGHTNESS = {"user": 32, "bridge": 46, "retention": 60, "archive_retention": 70, "unknown": 80}
_TRANSITION_ORDER = ("soft_delete", "restore", "purge", "soft_delete+purge")
_CAUSE_ORDER = ("user", "bridge", "retention", "archive_retention", "unknown")


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


def series_colour(transition: str, cause: str) -> str:
    """One colour per (transition, cause): the transition's hue, the cause's lightness."""
    hue = _HUES.get(transition, 210)
    light = _LIGHTNESS.get(cause, 80)
    saturation = 0 if transition not in _HUES else 65
    return f"hsl({hue},{saturation}%,{light}%)"


def _order(series: tuple[str, str]) -> tuple[int, int, str]:
    transition, cause = series
    t = _TRANSITION_ORDER.index(transition) if transition in _TRANSITION_ORDER else 99
    c = _CAUSE_ORDER.index(cause) if cause in _CAUSE_ORDER else 99
    return t, c, transition + cause


def timeline_svg(
    days: Sequence[date],
    side: str,
    title: str,
    per_day: Mapping[tuple[date, str, str, str], int],
) -> str:
    """Stacked bars of `side`'s transitions per day (or week, or month), one colour per
    transition and cause, with axis titles and a legend of the series shown."""
    span = len(days)
    buckets: list[date] = []
    for day in days:
        key = _bucket(day, span)
        if not buckets or buckets[-1] != key:
            buckets.append(key)
    counts: Counter[tuple[date, str, str]] = Counter()
    for (day, where, transition, cause), n in per_day.items():
        if where == side:
            counts[(_bucket(day, span), transition, cause)] += n
    series = sorted({(t, c) for _, t, c in counts}, key=_order)
    totals: Counter[date] = Counter()
    for (bucket, _, _), n in counts.items():
        totals[bucket] += n
    top = max(totals.values(), default=0) or 1
    legend_rows = (len(series) + 2) // 3
    height = _HEIGHT + 18 * legend_rows
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(1, len(buckets))
    bar = max(0.5, slot * 0.8)
    unit = bucket_label(span)
    name = f"{title}: transitions per {unit}, by transition and cause"
    parts = [
        f'<svg class="timeline" viewBox="0 0 {_WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{escape(name)}">',
        f"<title>{escape(name)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = _TOP + plot_h * (1 - fraction)
        value = round(top * fraction)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value}</text>'
        )
    for i, bucket in enumerate(buckets):
        x = _LEFT + i * slot + slot * 0.1
        base = float(_TOP + plot_h)
        for transition, cause in series:
            n = counts.get((bucket, transition, cause), 0)
            if not n:
                continue
            h = plot_h * n / top
            base -= h
            parts.append(
                f'<rect x="{x:.2f}" y="{base:.2f}" width="{bar:.2f}" height="{h:.2f}" '
                f'fill="{series_colour(transition, cause)}"><title>'
                f"{escape(bucket.isoformat())} {escape(transition)} {escape(cause)}: {n}"
                "</title></rect>"
            )
    step = max(1, len(buckets) // 8)
    for i in range(0, len(buckets), step):
        x = _LEFT + i * slot + slot / 2
        parts.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle" '
            f'font-size="11">{escape(buckets[i].isoformat())}</text>'
        )
    axis_y = _TOP + plot_h / 2
    parts.append(
        f'<text x="14" y="{axis_y:.1f}" transform="rotate(-90 14 {axis_y:.1f})" '
        f'text-anchor="middle" font-size="12">Transitions per {unit}</text>'
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_TOP + plot_h + 36}" text-anchor="middle" '
        f'font-size="12">{unit.capitalize()} detected (UTC)</text>'
    )
    for j, (transition, cause) in enumerate(series):
        x = _LEFT + (j % 3) * 280
        y = _HEIGHT - 8 + (j // 3) * 18
        parts.append(
            f'<rect x="{x}" y="{y - 10}" width="12" height="12" '
            f'fill="{series_colour(transition, cause)}"/>'
            f'<text x="{x + 16}" y="{y}" font-size="12">{escape(transition)} · '
            f"{escape(cause)}</text>"
        )
    if not series:
        parts.append(
            f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_TOP + plot_h / 2:.1f}" '
            'text-anchor="middle" font-size="13" fill="#777">no transitions</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
