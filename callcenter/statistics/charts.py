"""Charts drawn on the server as inline SVG: no script, no CDN, printable, allowed by the CSP
(presentation attributes only, no style attributes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape


def _nice(v: float) -> float:
    """The scale's top: 1, 2, 4 or 5 × a power of ten, at least ``v`` (whole ticks of a quarter)."""
    p = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 4, 5, 10):
        if m * p >= v:
            return m * p
    return 10 * p


PALETTE = ("#2b6cb0", "#38a169", "#dd6b20", "#805ad5", "#c53030")


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    width: int = 720,
    height: int = 240,
    title: str = "",
) -> Markup:
    """Grouped bars, one group per label, one bar per series, with a legend."""
    n = max(len(labels), 1)
    top = _nice(max([v for _, vals in series for v in vals if v is not None] or [0]) or 1)
    left, bottom, pad = 44, 36, 16
    plot_w, plot_h = width - left - pad, height - bottom - pad - 18
    group = plot_w / n
    bar = max(1.0, (group * 0.8) / max(len(series), 1))
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
    ]
    base_y = pad + 18 + plot_h
    for i in range(5):  # grid and scale
        v = top * i / 4
        y = base_y - plot_h * i / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" stroke="#e2e8f0"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{v:g}</text>')
    every = max(1, n // 24)
    for gi, label in enumerate(labels):
        x0 = left + gi * group + group * 0.1
        for si, (_name, vals) in enumerate(series):
            v = vals[gi] or 0
            h = plot_h * v / top
            out.append(
                f'<rect x="{x0 + si * bar:.1f}" y="{base_y - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"><title>{escape(label)}: {v:g}</title></rect>'
            )
        if gi % every == 0:
            out.append(
                f'<text x="{x0 + group * 0.4:.1f}" y="{base_y + 14}" font-size="10" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    for si, (name, _vals) in enumerate(series):
        x = left + si * 120
        out.append(
            f'<rect x="{x}" y="{pad - 8}" width="10" height="10" fill="{PALETTE[si % len(PALETTE)]}"/>'
        )
        out.append(f'<text x="{x + 14}" y="{pad + 1}" font-size="11">{escape(name)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
