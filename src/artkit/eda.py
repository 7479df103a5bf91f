"""``artkit eda``: what a dataset looks like before training on it.

Writes into ``config.out``: ``class_counts.png``, ``hist_{width,height,aspect,megapixels}.png``
(train vs test), ``contact_sheet.png``, ``eda.json`` (every number) and ``report.html`` (one page
with the tables and pictures). Never prints; reports progress through a callback.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.errors import ArtkitError
from artkit.scan import Inputs, Progress, find_duplicates, load_inputs, scan_images

GEOMETRY = ("width", "height", "aspect", "megapixels")


@dataclass
class EdaConfig:
    data: str | Path = "data"
    out: str | Path = "eda"
    train_csv: str | Path | None = None
    test_csv: str | Path | None = None
    id_col: str | None = None
    image_col: str | None = None
    label_col: str | None = None
    workers: int | None = None  # None: one per CPU
    min_count: int = 30  # classes with fewer training rows are named
    per_class: int = 5  # images per class on the contact sheet
    near_threshold: int = 8  # pHash Hamming distance for the near-duplicate count
    min_size: int = 32  # images with a side below this are counted as tiny
    use_cache: bool = True


@dataclass
class EdaReport:
    out: Path
    report_html: Path
    eda_json: Path
    figures: dict[str, Path]
    data: dict  # everything in eda.json
    notes: list[str] = field(default_factory=list)

    @property
    def n_train(self) -> int:
        return self.data["dataset"]["train_rows"]

    @property
    def n_test(self) -> int:
        return self.data["dataset"]["test_rows"]

    @property
    def class_counts(self) -> dict[str, int]:
        return self.data["classes"]["counts"]

    @property
    def imbalance_ratio(self) -> float | None:
        return self.data["classes"]["imbalance_ratio"]

    @property
    def below_min(self) -> dict[str, int]:
        return self.data["classes"]["below_min"]

    @property
    def problems(self) -> list[dict]:
        return self.data["files"]["problems"]


# ---------------------------------------------------------------- shared drawing helpers

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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

    from artkit.data.images import load_image

    try:
        img = load_image(path, min_size=size)
    except ArtkitError:
        return None
    img.thumbnail((size, size), Image.BILINEAR)
    return img


def contact_sheet(rows: Sequence[tuple[str, Sequence[tuple[str, str]]]], out: Path, thumb: int = 112,
                  workers: int = 4, title: str | None = None, block_rows: int = 20) -> Path:
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
    with ThreadPoolExecutor(max(1, workers)) as pool:
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
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
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


def html_table(headers: Sequence[str], rows: Sequence[Sequence], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="{"num" if k >= numeric_from else ""}">{html.escape(_fmt(v))}</td>'
                        for k, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{int(v):,}"
    return "" if v is None else str(v)


# Sets document.body.dataset.imagesLoaded once every picture has loaded (or failed): the tests
# read it in a headless browser to check that no picture is broken.
_IMAGES_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.dataset.imagesTotal = imgs.length;
  document.body.dataset.imagesLoaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
});
</script>"""

_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%;border:1px solid #eee}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid img{width:560px}.bad{color:#b00}.ok{color:#070}.muted{color:#777}"""


def html_page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n{_IMAGES_SCRIPT}\n</body></html>\n")


def img_tag(name: str, alt: str) -> str:
    return f'<img src="{html.escape(name)}" alt="{html.escape(alt)}">'


# ---------------------------------------------------------------- numbers

def _stats(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"n": 0}
    q = np.percentile(values, [0, 5, 50, 95, 100])
    return {"n": int(len(values)), "min": float(q[0]), "p5": float(q[1]), "median": float(q[2]),
            "mean": float(np.mean(values)), "p95": float(q[3]), "max": float(q[4])}


def _geometry(scan: pd.DataFrame) -> dict[str, np.ndarray]:
    ok = scan[scan["readable"].astype(bool)]
    w, h = ok["width"].to_numpy(np.float64), ok["height"].to_numpy(np.float64)
    return {"width": w, "height": h, "aspect": w / np.maximum(h, 1), "megapixels": w * h / 1e6}


def _dup_ids(ids: pd.Series) -> dict[str, int]:
    counts = ids.value_counts()
    return {str(k): int(v) for k, v in counts[counts > 1].items()}


def _problem_rows(table: pd.DataFrame, scan: pd.DataFrame, which: str) -> list[dict]:
    bad = ~scan["readable"].astype(bool).to_numpy()
    cols = zip(table["id"].to_numpy()[bad], scan["path"].to_numpy()[bad], scan["error_kind"].to_numpy()[bad],
               scan["error"].to_numpy()[bad])
    return [{"set": which, "id": str(i), "file": str(f), "kind": str(k), "error": str(e)} for i, f, k, e in cols]


# ---------------------------------------------------------------- figures

def _plot_class_counts(counts: dict[str, int], min_count: int, path: Path) -> None:
    plt = _plt()
    names, values = list(counts), list(counts.values())
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.24 * len(names) + 1.2)))
    colours = ["#c0392b" if v < min_count else "#2e86c1" for v in values]
    ax.barh(range(len(names)), values, color=colours)
    ax.set_yticks(range(len(names)), names, fontsize=8 if len(names) > 25 else 10)
    ax.set_ylim(len(names) - 0.5, -0.5)  # largest on top, no empty margin
    for k, v in enumerate(values):
        ax.text(v, k, f" {v}", va="center", fontsize=7 if len(names) > 25 else 9)
    if values and min(values) < min_count <= max(values) * 1.5:
        ax.axvline(min_count, color="#c0392b", ls="--", lw=1, label=f"--min-count {min_count}")
        ax.legend(loc="lower right")
    ax.set_xlabel("training images")
    ax.set_title(f"images per class ({len(names)} classes, {sum(values):,} rows)")
    ax.margins(x=0.08)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_hist(name: str, train: np.ndarray, test: np.ndarray | None, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    both = np.concatenate([train, test]) if test is not None and len(test) else train
    if len(both):
        lo, hi = float(both.min()), float(both.max())
        bins = np.histogram_bin_edges(both, bins=40) if hi > lo else np.array([lo - 0.5, hi + 0.5])
        for values, label, colour in ((train, "train", "#2e86c1"), (test, "test", "#e67e22")):
            if values is not None and len(values):
                ax.hist(values, bins=bins, weights=np.full(len(values), 1.0 / len(values)), alpha=0.55,
                        color=colour, label=f"{label} (n={len(values):,})")
        ax.legend()
    unit = {"width": "px", "height": "px", "aspect": "width / height", "megapixels": "MP"}[name]
    ax.set_xlabel(f"{name} ({unit})")
    ax.set_ylabel("fraction of images")
    ax.set_title(f"image {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- the report

def run_eda(config: EdaConfig, progress: Progress | None = None) -> EdaReport:
    """Scan every train/test image and write the figures, ``eda.json`` and ``report.html``."""
    check_range(config.min_count, "--min-count")
    check_range(config.per_class, "--per-class", 0, 50)
    check_range(config.near_threshold, "--near-threshold", 0, 64)
    check_range(config.min_size, "--min-size")
    inputs = load_inputs(config.data, config.train_csv, config.test_csv, config.id_col, config.image_col,
                         config.label_col)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = inputs.train, inputs.test
    paths = train["path"].tolist() + (test["path"].tolist() if test is not None else [])
    scan = scan_images(paths, config.workers, config.use_cache, progress=progress)
    n = len(train)
    tr_scan = scan.table.iloc[:n].reset_index(drop=True)
    te_scan = scan.table.iloc[n:].reset_index(drop=True) if test is not None else None
    data = _summarise(config, inputs, tr_scan, te_scan)
    dups = find_duplicates(tr_scan, te_scan, config.near_threshold, config.workers, config.use_cache)
    data["duplicates"] = {"near_threshold": config.near_threshold,
                          "exact_groups": len(dups.exact_groups),
                          "exact_images": sum(len(g) for g in dups.exact_groups),
                          "near_pairs": len(dups.near_pairs),
                          "train_test_leaks": len(dups.leaks)}
    data["scan"] = {"files": len(set(paths)), "cache_hits": scan.cache_hits, "decoded": scan.decoded,
                    "seconds": round(scan.seconds, 3), "cache": str(scan.cache_path) if scan.cache_path else None}

    figures: dict[str, Path] = {}
    figures["class_counts"] = out / "class_counts.png"
    _plot_class_counts(data["classes"]["counts"], config.min_count, figures["class_counts"])
    geo_tr = _geometry(tr_scan)
    geo_te = _geometry(te_scan) if te_scan is not None else None
    for name in GEOMETRY:
        figures[f"hist_{name}"] = out / f"hist_{name}.png"
        _plot_hist(name, geo_tr[name], geo_te[name] if geo_te else None, figures[f"hist_{name}"])
    figures["contact_sheet"] = out / "contact_sheet.png"
    _class_sheet(train, tr_scan, data["classes"]["counts"], config, figures["contact_sheet"])
    data["figures"] = {k: v.name for k, v in figures.items()}

    eda_json = out / "eda.json"
    eda_json.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    report_html = out / "report.html"
    report_html.write_text(_html(data, config), encoding="utf-8")
    return EdaReport(out, report_html, eda_json, figures, data, data["dataset"]["notes"])


def _summarise(config: EdaConfig, inputs: Inputs, tr: pd.DataFrame, te: pd.DataFrame | None) -> dict:
    train, test = inputs.train, inputs.test
    labels = train["label"].astype(str)
    empty = labels.str.strip() == ""
    counts = labels[~empty].value_counts()
    counts = counts.sort_values(ascending=False, kind="stable")
    counts = {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
    ratio = (max(counts.values()) / min(counts.values())) if counts else None
    notes = []
    if inputs.test_source == "test/ folder" and inputs.layout == "csv":
        notes.append("no test.csv: the images in test/ were used as the test set")
    if test is None:
        notes.append("no test set found: geometry is shown for train only, and no train/test leak check")

    readable = tr["readable"].astype(bool)
    per_class = []
    for cls in counts:
        rows = (labels == cls).to_numpy()
        ok = rows & readable.to_numpy()
        per_class.append({"class": cls, "rows": int(rows.sum()), "readable": int(ok.sum()),
                          "unreadable": int(rows.sum() - ok.sum()),
                          "stored_gray": int((ok & tr["stored_gray"].astype(bool).to_numpy()).sum()),
                          "gray_as_rgb": int((ok & tr["is_grayscale"].astype(bool).to_numpy()
                                              & ~tr["stored_gray"].astype(bool).to_numpy()).sum())})

    def modes(scan: pd.DataFrame | None) -> dict:
        if scan is None:
            return {}
        ok = scan[scan["readable"].astype(bool)]
        gray_rgb = ok["is_grayscale"].astype(bool) & ~ok["stored_gray"].astype(bool)
        return {"modes": {str(k): int(v) for k, v in ok["mode"].value_counts().items()},
                "formats": {str(k): int(v) for k, v in ok["format"].value_counts().items()},
                "grayscale": int(ok["is_grayscale"].astype(bool).sum()),
                "stored_gray": int(ok["stored_gray"].astype(bool).sum()), "gray_as_rgb": int(gray_rgb.sum())}

    def files(scan: pd.DataFrame | None) -> dict:
        if scan is None:
            return {}
        bad = scan[~scan["readable"].astype(bool)]
        ok = scan[scan["readable"].astype(bool)]
        tiny = ok[np.minimum(ok["width"], ok["height"]) < config.min_size]
        return {"rows": int(len(scan)), "readable": int(len(ok)),
                "problems": {str(k): int(v) for k, v in bad["error_kind"].value_counts().items()},
                "tiny": int(len(tiny)), "bytes": int(scan["bytes"].sum())}

    geo_tr = _geometry(tr)
    geo_te = _geometry(te) if te is not None else None
    problems = _problem_rows(train, tr, "train") + (_problem_rows(test, te, "test") if te is not None else [])
    return {
        "dataset": {"root": str(inputs.root.resolve()), "layout": inputs.layout,
                    "train_csv": str(inputs.train_csv) if inputs.train_csv else None,
                    "test_csv": str(inputs.test_csv) if inputs.test_csv else None, "test_source": inputs.test_source,
                    "label_column": inputs.label_col, "train_rows": int(len(train)),
                    "test_rows": int(len(test)) if test is not None else 0, "notes": notes},
        "classes": {"counts": counts, "n_classes": len(counts), "imbalance_ratio": ratio,
                    "largest": next(iter(counts), None), "smallest": next(reversed(counts), None) if counts else None,
                    "min_count": config.min_count,
                    "below_min": {k: v for k, v in counts.items() if v < config.min_count},
                    "per_class": per_class},
        "labels": {"empty": int(empty.sum()), "empty_ids": train.loc[empty, "id"].astype(str).tolist()},
        "ids": {"duplicate_train": _dup_ids(train["id"]),
                "duplicate_test": _dup_ids(test["id"]) if test is not None else {}},
        "geometry": {"train": {k: _stats(v) for k, v in geo_tr.items()},
                     "test": {k: _stats(v) for k, v in geo_te.items()} if geo_te else {}},
        "colour": {"train": modes(tr), "test": modes(te)},
        "files": {"train": files(tr), "test": files(te), "problems": problems},
    }


def _class_sheet(train: pd.DataFrame, scan: pd.DataFrame, counts: dict[str, int], config: EdaConfig,
                 out: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    readable = scan["readable"].astype(bool).to_numpy()
    labels = train["label"].astype(str).to_numpy()
    for cls in counts:
        idx = np.flatnonzero((labels == cls) & readable)
        if len(idx) > config.per_class:
            idx = np.sort(rng.choice(idx, config.per_class, replace=False))
        items = [(scan.at[i, "path"], f"{train.at[i, 'id']} · {scan.at[i, 'width']}x{scan.at[i, 'height']}")
                 for i in idx]
        rows.append((f"{cls} ({counts[cls]})", items))
    thumb = 112 if len(rows) <= 20 else 88
    contact_sheet(rows, out, thumb=thumb, workers=config.workers or 4,
                  title=f"{config.per_class} random images per class")


def _html(d: dict, config: EdaConfig) -> str:
    ds, cl = d["dataset"], d["classes"]
    parts = []
    ratio = f"{cl['imbalance_ratio']:.1f}" if cl["imbalance_ratio"] else "n/a"
    parts.append("<h2>Overview</h2>" + html_table(["", "value"], [
        ["data", ds["root"]], ["layout", ds["layout"]], ["train CSV", ds["train_csv"] or "—"],
        ["test set", f"{ds['test_source']} ({ds['test_rows']:,} images)"], ["training rows", ds["train_rows"]],
        ["classes", cl["n_classes"]], ["imbalance (largest / smallest)", f"{ratio}  ({cl['largest']} / {cl['smallest']})"],
        ["empty labels", d["labels"]["empty"]], ["duplicate ids (train)", len(d["ids"]["duplicate_train"])],
        ["unreadable train files", sum(d["files"]["train"]["problems"].values())],
        ["exact-duplicate groups (train)", d["duplicates"]["exact_groups"]],
        ["near-duplicate pairs (train)", d["duplicates"]["near_pairs"]],
        ["train images also in test", d["duplicates"]["train_test_leaks"]],
    ], numeric_from=9))
    for note in ds["notes"]:
        parts.append(f'<p class="muted">Note: {html.escape(note)}</p>')

    parts.append("<h2>Classes</h2>")
    if cl["below_min"]:
        names = ", ".join(f"{k} ({v})" for k, v in cl["below_min"].items())
        parts.append(f'<p class="bad">{len(cl["below_min"])} class(es) below --min-count {cl["min_count"]}: '
                     f"{html.escape(names)}</p>")
    else:
        parts.append(f'<p class="ok">Every class has at least {cl["min_count"]} images.</p>')
    parts.append(img_tag(d["figures"]["class_counts"], "images per class"))
    parts.append(html_table(["class", "rows", "readable", "unreadable", "stored grayscale", "grayscale stored as RGB"],
                            [[r["class"], r["rows"], r["readable"], r["unreadable"], r["stored_gray"], r["gray_as_rgb"]]
                             for r in cl["per_class"]]))

    parts.append("<h2>Problems</h2>")
    problems = d["files"]["problems"]
    if problems:
        shown = problems[:200]
        parts.append(f'<p class="bad">{len(problems):,} missing or unreadable file(s)'
                     + (" (first 200 listed; all in eda.json)" if len(problems) > 200 else "") + "</p>")
        parts.append(html_table(["set", "id", "kind", "error", "file"],
                                [[p["set"], p["id"], p["kind"], p["error"], p["file"]] for p in shown], numeric_from=9))
    else:
        parts.append('<p class="ok">Every image file exists and decodes.</p>')
    if d["labels"]["empty"]:
        parts.append(f'<p class="bad">{d["labels"]["empty"]} row(s) with an empty label: ids '
                     f'{html.escape(", ".join(d["labels"]["empty_ids"][:50]))}</p>')
    for which in ("train", "test"):
        dup = d["ids"][f"duplicate_{which}"]
        if dup:
            parts.append(f'<p class="bad">{len(dup)} duplicate id(s) in {which}: '
                         f'{html.escape(", ".join(f"{k} (x{v})" for k, v in list(dup.items())[:50]))}</p>')
    dd = d["duplicates"]
    parts.append(f"<p>{dd['exact_groups']} group(s) of identical training images ({dd['exact_images']} images), "
                 f"{dd['near_pairs']} near-duplicate pair(s) (pHash distance ≤ {dd['near_threshold']}), "
                 f"{dd['train_test_leaks']} training image(s) also in the test set. "
                 "<code>artkit clean</code> lists them one by one.</p>")

    parts.append("<h2>Image geometry</h2>")
    rows = []
    for name in GEOMETRY:
        for which in ("train", "test"):
            s = d["geometry"].get(which, {}).get(name)
            if s and s.get("n"):
                rows.append([name, which, s["n"], s["min"], s["p5"], s["median"], s["mean"], s["p95"], s["max"]])
    parts.append(html_table(["measure", "set", "images", "min", "p5", "median", "mean", "p95", "max"], rows, numeric_from=2))
    tiny = d["files"]["train"].get("tiny", 0)
    parts.append(f"<p>{tiny} training image(s) with a side below {config.min_size} px.</p>")
    parts.append('<div class="grid">' + "".join(img_tag(d["figures"][f"hist_{n}"], f"{n} histogram")
                                                for n in GEOMETRY) + "</div>")

    parts.append("<h2>Colour modes</h2>")
    rows = []
    for which in ("train", "test"):
        c = d["colour"].get(which)
        if c:
            rows.append([which, ", ".join(f"{k}: {v:,}" for k, v in c["modes"].items()),
                         ", ".join(f"{k}: {v:,}" for k, v in c["formats"].items()), c["stored_gray"], c["gray_as_rgb"]])
    parts.append(html_table(["set", "modes", "formats", "stored grayscale", "grayscale stored as RGB"], rows, numeric_from=3))
    parts.append('<p class="muted">Every mode is converted to RGB when loaded; grayscale images are per class in the '
                 "class table above.</p>")

    parts.append("<h2>Contact sheet</h2>")
    parts.append(img_tag(d["figures"]["contact_sheet"], "sample images per class"))
    sc = d["scan"]
    parts.append(f'<p class="muted">Scanned {sc["files"]:,} files in {sc["seconds"]:.1f} s '
                 f'({sc["cache_hits"]:,} from the cache, {sc["decoded"]:,} decoded).</p>')
    return html_page(f"EDA: {Path(ds['root']).name}", "\n".join(parts))


def check_range(value: int, flag: str, lo: int = 0, hi: int | None = None) -> None:
    """A user-given number outside [lo, hi] is a user error."""
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ArtkitError(f"{flag} must be {bound}, got {value}", f"pass {flag} {bound}")
