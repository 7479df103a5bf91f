"""Self-contained HTML pages: tables, pictures and the script that lets tests check every picture loaded."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

# Sets document.body.dataset.imagesLoaded once every picture has loaded (or failed): the tests
# read it in a headless browser to check that no picture is broken.
_IMAGES_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.dataset.imagesTotal = imgs.length;
  document.body.dataset.imagesLoaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
});
</script>"""

_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1200px;color:#222;
padding:0 16px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}th,td{border:1px solid #ddd;padding:3px 8px;
text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid img{width:560px}.bad{color:#b00}.ok{color:#070}.muted{color:#777}"""


def fmt(v) -> str:
    """A table cell: thousands separators, three significant digits, blank for None."""
    import numpy as np

    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return f"{int(v):,}"
    return "" if v is None else str(v)


def table(headers: Sequence[str], rows: Sequence[Sequence], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{"num" if k >= numeric_from else ""}">{html.escape(fmt(v))}</td>' for k, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str, css: str = "") -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}{css}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n{_IMAGES_SCRIPT}\n"
        "</body></html>\n"
    )


def img(name: str, alt: str, attrs: str = "") -> str:
    return f'<img src="{html.escape(name)}" alt="{html.escape(alt)}"{(" " + attrs) if attrs else ""}>'


def escape(text: str) -> str:
    return html.escape(text)


def heading(text: str) -> str:
    """A section heading with an id, so that ``report.html#top-losses`` opens at that section."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return f'<h2 id="{slug}">{html.escape(text)}</h2>'
