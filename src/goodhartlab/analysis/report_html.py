"""HTML pieces of the Goodhart report: one static page, inline CSS, no JavaScript, relative images.

Why hand-written HTML rather than a template engine: the page is a handful of tables, figures
and paragraphs; escaping every value in one place (`esc`) is all the safety it needs, and the
report then opens from the file system with nothing installed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde2ea; --bg: #f6f7f9; --accent: #2456a6; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 60px; background: #fff;
  box-shadow: 0 0 0 1px var(--line); min-height: 100vh; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
p { margin: 6px 0 10px; }
.meta { color: var(--muted); font-size: 13px; margin-bottom: 14px; }
.lead { background: #eef3fb; border-left: 4px solid var(--accent); padding: 12px 16px;
  margin: 14px 0 8px; border-radius: 3px; }
.lead ul { margin: 4px 0; padding-left: 20px; }
.lead li { margin: 3px 0; }
.intro { color: var(--ink); font-style: italic; }
.howto { color: var(--muted); font-size: 13.5px; }
nav.toc { font-size: 13.5px; margin: 8px 0 0; }
nav.toc a { color: var(--accent); text-decoration: none; margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0 6px; font-size: 13.5px; width: auto; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right;
  white-space: nowrap; }
th { background: #f0f2f5; font-weight: 600; border-bottom: 2px solid #c9cfd8;
  white-space: normal; vertical-align: bottom; max-width: 9em; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
th:first-child, td:first-child { text-align: left; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.best { font-weight: 700; color: #0b6b2e; }
td.bad { color: #b02a1a; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
  margin-right: 6px; vertical-align: -1px; }
figure { margin: 14px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 3px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; max-width: 900px; }
.note { color: #7a5a00; background: #fff8e1; border: 1px solid #f1e0a6; padding: 6px 10px;
  border-radius: 3px; font-size: 13px; display: inline-block; margin: 4px 0; }
.small { font-size: 12.5px; color: var(--muted); }
code { background: #f0f2f5; padding: 0 4px; border-radius: 3px; font-size: 12.5px; }
"""


def esc(value: Any) -> str:
    """Escaped text of any value (HTML-special characters and quotes)."""
    return html.escape(str(value), quote=True)


def num(value: Any, digits: int = 3) -> str:
    """A number with `digits` decimals; '–' for missing or nan, '∞' for inf; ints as they are."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if abs(x) >= 1e4:  # an extrapolated d* can be astronomically far: keep the column narrow
        return f"{x:.2g}"
    return f"{x:.{digits}f}"


def interval(value: Any, ci: Sequence[Any] | None, digits: int = 2) -> str:
    """'v [lo, hi]' with an open side shown as ∞; 'v' alone without an interval."""
    if value is None:
        return "–"
    if not ci:
        return num(value, digits)
    lo = num(ci[0], digits) if ci[0] is not None else "-∞"
    hi = num(ci[1], digits) if ci[1] is not None else "∞"
    return f"{num(value, digits)} [{lo}, {hi}]"


class Cell(str):
    """Pre-rendered HTML for a table cell (not escaped again), with an optional CSS class."""

    css: str = ""

    def __new__(cls, text: str, css: str = "") -> Cell:
        obj = super().__new__(cls, text)
        obj.css = css
        return obj


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> str:
    """A table; a `Cell` is inserted as HTML (with its class), anything else escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, Cell):
                cls = f' class="{cell.css}"' if cell.css else ""
                cells.append(f"<td{cls}>{cell}</td>")
            else:
                cells.append(f"<td>{esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<h3>{esc(title)}</h3>" if title else ""
    return (
        f'{caption}<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def swatch(label: str, color: str) -> Cell:
    """A method name with its plot colour, so tables and figures read together."""
    return Cell(f'<span class="swatch" style="background:{esc(color)}"></span>{esc(label)}')


def figure(src: str, alt: str, caption: str) -> str:
    """An image by relative path with a caption (caption is HTML: callers escape data in it)."""
    return (
        f'<figure><img src="{esc(src)}" alt="{esc(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def note(text: str) -> str:
    """A visible note for a skipped or partial piece of the report."""
    return f'<p><span class="note">{esc(text)}</span></p>'


def paragraph(text_html: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<p{cls}>{text_html}</p>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, meta: str, lead: str, toc: Sequence[tuple[str, str]], body: str) -> str:
    """The whole document."""
    links = "".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t in toc)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>{esc(title)}</h1><div class="meta">{meta}</div>{lead}'
        f'<nav class="toc">{links}</nav>{body}</main></body></html>\n'
    )
