"""Contact sheets: grids of image thumbnails with headings and captions, as one PNG."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from artkit.data.images import load_image
from artkit.errors import ArtkitError
from artkit.system import default_workers
from artkit.writer import save_image


def _font(size: int):
    from PIL import ImageFont

    try:
        import matplotlib

        # DejaVu Sans ships with matplotlib and covers accented and most non-Latin names
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (OSError, ImportError):
        return ImageFont.load_default()


def _fit(text: str, font, width: int) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _thumb(path: str, size: int):
    from PIL import Image

    try:
        img = load_image(path, min_size=size)
    except ArtkitError:
        return None
    img.thumbnail((size, size), Image.BILINEAR)
    return img


def contact_sheet(
    rows: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    out: Path,
    thumb: int = 112,
    workers: int | None = None,  # threads decoding thumbnails (default: artkit.system.default_workers)
    title: str | None = None,
    block_rows: int = 20,
) -> Path:
    """A grid PNG: one row per (heading, [(image path, caption), ...]); unreadable files get a
    crossed-out tile. Long headings and captions are shortened with an ellipsis."""
    from PIL import Image, ImageDraw

    head_w, pad, cap_h = 190, 6, 16
    cols = max([len(items) for _, items in rows] + [1])
    title_h = 28 if title else 0
    # many rows (classes) go into side-by-side blocks so the sheet stays viewable on a screen
    blocks = max(1, -(-len(rows) // block_rows))
    per_block = max(1, -(-len(rows) // blocks))
    block_w = head_w + cols * (thumb + pad) + 3 * pad
    width = blocks * block_w
    height = title_h + per_block * (thumb + cap_h + pad) + pad
    sheet = Image.new("RGB", (width, max(height, 40)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font, bold = _font(11), _font(13)
    if title:
        draw.text((pad, 6), title, fill=(0, 0, 0), font=_font(15))
    paths = sorted({p for _, items in rows for p, _ in items})
    with ThreadPoolExecutor(max(1, workers or default_workers())) as pool:
        thumbs = dict(zip(paths, pool.map(lambda p: _thumb(p, thumb), paths)))
    for r, (heading, items) in enumerate(rows):
        x0 = (r // per_block) * block_w + pad
        y = title_h + pad + (r % per_block) * (thumb + cap_h + pad)
        lines = _wrap(heading, bold, head_w - 2 * pad)
        for k, line in enumerate(lines[:4]):
            draw.text((x0, y + 4 + 16 * k), line, fill=(20, 20, 20), font=bold)
        for c, (path, caption) in enumerate(items):
            x = x0 + head_w + c * (thumb + pad)
            draw.rectangle([x, y, x + thumb - 1, y + thumb - 1], fill=(236, 236, 236))
            img = thumbs.get(path)
            if img is None:
                draw.line([x, y, x + thumb - 1, y + thumb - 1], fill=(200, 40, 40), width=2)
                draw.line([x, y + thumb - 1, x + thumb - 1, y], fill=(200, 40, 40), width=2)
                draw.text((x + 4, y + thumb // 2 - 6), "unreadable", fill=(160, 0, 0), font=font)
            else:
                sheet.paste(img, (x + (thumb - img.width) // 2, y + (thumb - img.height) // 2))
            draw.text((x, y + thumb + 1), _fit(caption, font, thumb), fill=(60, 60, 60), font=font)
    save_image(sheet, out)
    return out


def _wrap(text: str, font, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        cand = f"{line} {word}".strip()
        if font.getlength(cand) <= width or not line:
            line = cand
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return [_fit(ln, font, width) for ln in lines]
