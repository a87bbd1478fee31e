"""Core: the response-time report as one self-contained HTML page with inline SVG charts.

No script, no stylesheet or font from elsewhere, no image files: the page can
be mailed or archived as it is. Every piece of text that comes from data
(a group's name, a source's name, the title) is escaped, in the HTML and in
the SVG alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from command.report import LABELS, TARGET_FRACTION, Row, target_label
from workflows.intervals import INTERVALS, Interval

# one colour per source, in order (ECC, then the department beside it)
COLOURS = ("#1f5fa8", "#c8611a", "#3a8a3a", "#7a3a8a")
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.met { color: #2a7a2a; } .missed { color: #b02020; }
figure { margin: 1.5em 0; } figcaption { font-weight: 600; margin-bottom: .3em; }
svg text { font: 11px system-ui, sans-serif; fill: #222; }
"""


def render(pairs: Sequence[tuple[Row | None, ...]], names: Sequence[str], *, title: str,
           lines: Sequence[str] = ()) -> str:
    """The page: ``title``, the ``lines`` under it (the period, the sources), a chart per
    interval (p50 and p90 bars per group and source, with each group's target), and
    the whole table."""
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>", f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *(f"<p>{escape(line)}</p>" for line in lines),
        f"<p>Bars: p50 (light) and p90 (dark), in seconds, nearest-rank percentiles. A black "
        f"tick is the group's target, to be met by {TARGET_FRACTION:.0%} of measures; "
        "“by agency” means each measure against its own agency's target.</p>",
    ]
    for interval in INTERVALS:
        chart = _chart(interval, pairs, names)
        if chart:
            parts.append(f"<figure><figcaption>{escape(LABELS[interval])}</figcaption>"
                         f"{chart}</figure>")
    parts.append(_table(pairs, names))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _chart(interval: Interval, pairs: Sequence[tuple[Row | None, ...]],
           names: Sequence[str]) -> str:
    bars: list[tuple[int, Row]] = [(i, r) for pair in pairs for i, r in enumerate(pair)
                                   if r is not None and r.interval == interval and r.n]
    if not bars:
        return ""
    label_w, bar_w, value_w, row_h, top = 300, 420, 260, 20, 8
    width = label_w + bar_w + value_w
    height = top * 2 + row_h * len(bars)
    top_value = max(max((r.p90 or 0.0) for _, r in bars),
                    max((r.target or 0.0) for _, r in bars)) * 1.08 or 1.0

    def x(seconds: float) -> float:
        return label_w + bar_w * seconds / top_value

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(LABELS[interval])}">']
    for k, (i, r) in enumerate(bars):
        y = top + k * row_h
        colour = COLOURS[i % len(COLOURS)]
        label = f"{names[i]} · {r.dimension}: {r.group}"
        out.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
                   f"{escape(_clip(label, 48))}</text>")
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{x(r.p90 or 0) - label_w:.1f}" '
                   f'height="{row_h - 6}" fill="{colour}"/>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{x(r.p50 or 0) - label_w:.1f}" '
                   f'height="{row_h - 6}" fill="#fff" fill-opacity="0.45"/>')
        if r.target is not None:
            out.append(f'<line x1="{x(r.target):.1f}" x2="{x(r.target):.1f}" y1="{y + 1}" '
                       f'y2="{y + row_h - 1}" stroke="#000" stroke-width="2"/>')
        value = f"p50 {r.p50:.0f} · p90 {r.p90:.0f} s · n={r.n}"
        if r.within is not None:
            value += f" · {r.within:.0%} ≤ target"
        out.append(f'<text x="{label_w + bar_w + 6}" y="{y + 14}">{escape(value)}</text>')
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _table(pairs: Sequence[tuple[Row | None, ...]], names: Sequence[str]) -> str:
    head = ["dimension", "group", "interval", "target s"]
    for name in names:
        head += [f"{name} {h}" for h in ("n", "p50", "p90", "p99", "≤ target")]
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for pair in pairs:
        first = next(r for r in pair if r is not None)
        cells = [escape(first.dimension), escape(first.group), escape(first.interval),
                 escape(target_label(pair))]
        row = "".join(f"<td>{c}</td>" for c in cells)
        for r in pair:
            row += _numbers(r)
        out.append(f"<tr>{row}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _numbers(r: Row | None) -> str:
    if r is None:
        return '<td class="n">—</td>' * 5
    cells = [str(r.n), *("" if v is None else f"{v:.0f}" for v in (r.p50, r.p90, r.p99))]
    out = "".join(f'<td class="n">{c}</td>' for c in cells)
    if r.within is None:
        return out + '<td class="n"></td>'
    mark = ("met", "✓") if r.met else ("missed", "✗")
    return out + f'<td class="n {mark[0]}">{r.within:.0%} {mark[1]}</td>'
