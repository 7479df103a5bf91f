"""``artkit eda``: what a dataset looks like before training on it.

Writes into ``config.out``: ``class_counts.png``, ``hist_{width,height,aspect,megapixels}.png``
(train vs test), ``contact_sheet.png``, ``eda.json`` (every number) and ``report.html`` (one page
with the tables and pictures). Never prints; reports progress through a callback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from artkit.data.labels import similar_labels
from artkit.data.layout import DataSource, discover, paths_outside
from artkit.options import check_config
from artkit.plots import pyplot
from artkit.qa.config import EdaConfig
from artkit.qa.duplicates import find_duplicates
from artkit.qa.recommend import recommend, write_recommendation
from artkit.qa.scan import Progress, scan_images
from artkit.render.html import escape, img, page, table
from artkit.render.sheet import contact_sheet
from artkit.writer import ensure_dir, save_figure, write_json, write_text

GEOMETRY = ("width", "height", "aspect", "megapixels")


@dataclass(kw_only=True)
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


# ---------------------------------------------------------------- numbers


def _stats(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {"n": 0}
    q = np.percentile(values, [0, 5, 50, 95, 100])
    return {
        "n": int(len(values)),
        "min": float(q[0]),
        "p5": float(q[1]),
        "median": float(q[2]),
        "mean": float(np.mean(values)),
        "p95": float(q[3]),
        "max": float(q[4]),
    }


def _geometry(scan: pd.DataFrame) -> dict[str, np.ndarray]:
    ok = scan[scan["readable"].astype(bool)]
    w, h = ok["width"].to_numpy(np.float64), ok["height"].to_numpy(np.float64)
    return {"width": w, "height": h, "aspect": w / np.maximum(h, 1), "megapixels": w * h / 1e6}


def _dup_ids(ids: pd.Series) -> dict[str, int]:
    counts = ids.value_counts()
    return {str(k): int(v) for k, v in counts[counts > 1].items()}


def _problem_rows(table: pd.DataFrame, scan: pd.DataFrame, which: str) -> list[dict]:
    bad = ~scan["readable"].astype(bool).to_numpy()
    cols = zip(
        table["id"].to_numpy()[bad],
        scan["path"].to_numpy()[bad],
        scan["error_kind"].to_numpy()[bad],
        scan["error"].to_numpy()[bad],
    )
    return [{"set": which, "id": str(i), "file": str(f), "kind": str(k), "error": str(e)} for i, f, k, e in cols]


# ---------------------------------------------------------------- figures


def _plot_class_counts(counts: dict[str, int], min_count: int, path: Path) -> None:
    plt = pyplot()
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
    save_figure(fig, path)


def _plot_hist(name: str, train: np.ndarray, test: np.ndarray | None, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    both = np.concatenate([train, test]) if test is not None and len(test) else train
    if len(both):
        lo, hi = float(both.min()), float(both.max())
        bins = np.histogram_bin_edges(both, bins=40) if hi > lo else np.array([lo - 0.5, hi + 0.5])
        for values, label, colour in ((train, "train", "#2e86c1"), (test, "test", "#e67e22")):
            if values is not None and len(values):
                ax.hist(
                    values,
                    bins=bins,
                    weights=np.full(len(values), 1.0 / len(values)),
                    alpha=0.55,
                    color=colour,
                    label=f"{label} (n={len(values):,})",
                )
        ax.legend()
    unit = {"width": "px", "height": "px", "aspect": "width / height", "megapixels": "MP"}[name]
    ax.set_xlabel(f"{name} ({unit})")
    ax.set_ylabel("fraction of images")
    ax.set_title(f"image {name}")
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------- the report


def _figures(
    config: EdaConfig, out: Path, data: dict, inputs: DataSource, tr: pd.DataFrame, te: pd.DataFrame | None, dups
) -> dict[str, Path]:
    train, test = inputs.train.reset_index(drop=True), inputs.test
    figures = {"class_counts": out / "class_counts.png"}
    _plot_class_counts(data["classes"]["counts"], config.min_count, figures["class_counts"])
    geo_tr, geo_te = _geometry(tr), (_geometry(te) if te is not None else None)
    for name in GEOMETRY:
        figures[f"hist_{name}"] = out / f"hist_{name}.png"
        _plot_hist(name, geo_tr[name], geo_te[name] if geo_te else None, figures[f"hist_{name}"])
    figures["contact_sheet"] = out / "contact_sheet.png"
    _class_sheet(train, tr, data["classes"]["counts"], config, figures["contact_sheet"], test, te)
    if _pairs_sheet(dups, train, tr, test, te, out / "pairs.png", config.workers):
        figures["pairs"] = out / "pairs.png"
    return figures


def run_eda(config: EdaConfig, progress: Progress | None = None) -> EdaReport:
    """Scan every train/test image and write the figures, ``eda.json``, ``recommended.yaml`` and ``report.html``."""
    check_config(config)
    inputs = discover(config.data, config.train_csv, config.test_csv, config.columns, tolerant=True)
    inputs.require_train()
    out = ensure_dir(config.out)
    train, test = inputs.train.reset_index(drop=True), inputs.test
    paths = train["path"].tolist() + (test["path"].tolist() if test is not None else [])
    scan = scan_images(paths, config.workers, config.cache, progress=progress)
    tr = scan.table.iloc[: len(train)].reset_index(drop=True)
    te = scan.table.iloc[len(train) :].reset_index(drop=True) if test is not None else None
    data = _summarise(config, inputs, tr, te)
    dups = find_duplicates(tr, te, config.near_threshold, config.workers, config.cache)
    data["duplicates"] = {
        "near_threshold": config.near_threshold,
        "exact_groups": len(dups.exact_groups),
        "exact_images": sum(len(g) for g in dups.exact_groups),
        "near_pairs": len(dups.near_pairs),
        "train_test_leaks": len(dups.leaks),
    }
    data["scan"] = {
        "files": len(set(paths)),
        "cache_hits": scan.cache_hits,
        "decoded": scan.decoded,
        "seconds": round(scan.seconds, 3),
        "cache": str(scan.cache_path) if scan.cache_path else None,
    }
    options, reasons, notes = recommend(inputs, data)
    data["recommended"] = {
        "file": "recommended.yaml",
        "options": options,
        "reasons": reasons,
        "notes": notes,
        "text": write_recommendation(out / "recommended.yaml", options, reasons, notes),
    }
    figures = _figures(config, out, data, inputs, tr, te, dups)
    data["figures"] = {k: v.name for k, v in figures.items()}
    write_json(out / "eda.json", data)
    write_text(out / "report.html", _html(data, config))
    return EdaReport(
        out=out,
        report_html=out / "report.html",
        eda_json=out / "eda.json",
        figures=figures,
        data=data,
        notes=data["dataset"]["notes"],
    )


def _class_counts(labels: pd.Series) -> dict[str, int]:
    """Rows per class, largest first (ties by name); empty labels left out."""
    counts = labels[labels.str.strip() != ""].value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _per_class(labels: pd.Series, counts: dict[str, int], tr: pd.DataFrame) -> list[dict]:
    readable = tr["readable"].astype(bool).to_numpy()
    stored_gray = tr["stored_gray"].astype(bool).to_numpy()
    gray = tr["is_grayscale"].astype(bool).to_numpy()
    out = []
    for cls in counts:
        rows = (labels == cls).to_numpy()
        ok = rows & readable
        out.append(
            {
                "class": cls,
                "rows": int(rows.sum()),
                "readable": int(ok.sum()),
                "unreadable": int(rows.sum() - ok.sum()),
                "stored_gray": int((ok & stored_gray).sum()),
                "gray_as_rgb": int((ok & gray & ~stored_gray).sum()),
            }
        )
    return out


def _classes(config: EdaConfig, labels: pd.Series, tr: pd.DataFrame) -> dict:
    counts = _class_counts(labels)
    return {
        "counts": counts,
        "n_classes": len(counts),
        "imbalance_ratio": (max(counts.values()) / min(counts.values())) if counts else None,
        "largest": next(iter(counts), None),
        "smallest": next(reversed(counts), None) if counts else None,
        "min_count": config.min_count,
        "below_min": {k: v for k, v in counts.items() if v < config.min_count},
        "per_class": _per_class(labels, counts, tr),
    }


def _modes(scan: pd.DataFrame | None) -> dict:
    if scan is None:
        return {}
    ok = scan[scan["readable"].astype(bool)]
    gray_rgb = ok["is_grayscale"].astype(bool) & ~ok["stored_gray"].astype(bool)
    return {
        "modes": {str(k): int(v) for k, v in ok["mode"].value_counts().items()},
        "formats": {str(k): int(v) for k, v in ok["format"].value_counts().items()},
        "grayscale": int(ok["is_grayscale"].astype(bool).sum()),
        "stored_gray": int(ok["stored_gray"].astype(bool).sum()),
        "gray_as_rgb": int(gray_rgb.sum()),
    }


def _files(scan: pd.DataFrame | None, min_size: int) -> dict:
    if scan is None:
        return {}
    bad = scan[~scan["readable"].astype(bool)]
    ok = scan[scan["readable"].astype(bool)]
    tiny = ok[np.minimum(ok["width"], ok["height"]) < min_size]
    return {
        "rows": int(len(scan)),
        "readable": int(len(ok)),
        "problems": {str(k): int(v) for k, v in bad["error_kind"].value_counts().items()},
        "tiny": int(len(tiny)),
        "bytes": int(scan["bytes"].sum()),
    }


def _dataset(inputs: DataSource, train: pd.DataFrame, test: pd.DataFrame | None) -> dict:
    notes = list(inputs.notes)
    if test is None:
        notes.append("no test set found: geometry is shown for train only, and no train/test leak check")
    return {
        "root": str(inputs.root.resolve()),
        "layout": inputs.layout,
        "train_csv": str(inputs.train_csv) if inputs.train_csv else None,
        "test_csv": str(inputs.test_csv) if inputs.test_csv else None,
        "test_source": inputs.test_source,
        "label_column": inputs.label_col,
        "train_rows": int(len(train)),
        "test_rows": int(len(test)) if test is not None else 0,
        "notes": notes,
    }


def _outside(inputs: DataSource) -> dict:
    """How many image paths point outside the data folder (and the CSV's folder), with an example."""
    csv_dirs = [p.parent for p in (inputs.train_csv, inputs.test_csv) if p is not None]
    outside = paths_outside(inputs.train, inputs.root, *csv_dirs) + paths_outside(inputs.test, inputs.root, *csv_dirs)
    return {"outside": len(outside), "example": outside[0] if outside else None}


def _summarise(config: EdaConfig, inputs: DataSource, tr: pd.DataFrame, te: pd.DataFrame | None) -> dict:
    """Every number of eda.json except duplicates and scan timings."""
    train, test = inputs.train.reset_index(drop=True), inputs.test
    labels = train["label"].astype(str)
    empty = labels.str.strip() == ""
    geo_te = _geometry(te) if te is not None else None
    problems = _problem_rows(train, tr, "train") + (_problem_rows(test, te, "test") if te is not None else [])
    return {
        "dataset": _dataset(inputs, train, test),
        "classes": _classes(config, labels, tr),
        "labels": {
            "empty": int(empty.sum()),
            "empty_ids": train.loc[empty, "id"].astype(str).tolist(),
            "similar": [list(p) for p in similar_labels(labels[~empty])],
        },
        "paths": _outside(inputs),
        "ids": {
            "duplicate_train": _dup_ids(train["id"]),
            "duplicate_test": _dup_ids(test["id"]) if test is not None else {},
        },
        "geometry": {
            "train": {k: _stats(v) for k, v in _geometry(tr).items()},
            "test": {k: _stats(v) for k, v in geo_te.items()} if geo_te else {},
        },
        "colour": {"train": _modes(tr), "test": _modes(te)},
        "files": {"train": _files(tr, config.min_size), "test": _files(te, config.min_size), "problems": problems},
    }


def _sample(idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(idx, k, replace=False)) if len(idx) > k else idx


def _tile(table: pd.DataFrame, scan: pd.DataFrame, i: int, label: str | None = None) -> tuple[str, str]:
    size = f"{scan.at[i, 'width']}x{scan.at[i, 'height']}"
    return scan.at[i, "path"], f"{table.at[i, 'id']} · {label if label is not None else size}"


def _class_sheet(
    train: pd.DataFrame,
    scan: pd.DataFrame,
    counts: dict[str, int],
    config: EdaConfig,
    out: Path,
    test: pd.DataFrame | None = None,
    te: pd.DataFrame | None = None,
) -> None:
    """A row of random images per class, and a row of test images (their sizes beside the training ones')."""
    rng = np.random.default_rng(0)
    rows = []
    readable = scan["readable"].astype(bool).to_numpy()
    labels = train["label"].astype(str).to_numpy()
    for cls in counts:
        idx = _sample(np.flatnonzero((labels == cls) & readable), config.per_class, rng)
        rows.append((f"{cls} ({counts[cls]})", [_tile(train, scan, i) for i in idx]))
    if test is not None and te is not None and config.per_class:
        idx = _sample(np.flatnonzero(te["readable"].astype(bool).to_numpy()), config.per_class, rng)
        rows.append((f"test images ({len(test)})", [_tile(test, te, i) for i in idx]))
    thumb = 112 if len(rows) <= 20 else 88
    contact_sheet(
        rows,
        out,
        thumb=thumb,
        workers=config.workers,
        title=f"{config.per_class} random images per class, and of the test set (id · size)",
    )


def _pairs_sheet(
    dups,
    train: pd.DataFrame,
    tr: pd.DataFrame,
    test: pd.DataFrame | None,
    te: pd.DataFrame | None,
    out: Path,
    workers: int | None,
    limit: int = 12,
) -> bool:
    """Near-duplicate pairs and train/test copies side by side; False (no file) when there are none."""
    labels = train["label"].astype(str)
    rows = [
        (f"near duplicates, distance {d}", [_tile(train, tr, i, labels[i]), _tile(train, tr, j, labels[j])])
        for i, j, d in dups.near_pairs[:limit]
    ]
    if test is not None and te is not None:
        rows += [
            (
                f"train image in test ({'identical' if exact else f'distance {d}'})",
                [_tile(train, tr, i, labels[i]), _tile(test, te, t, "test")],
            )
            for i, t, d, exact in dups.leaks[: max(0, limit - len(rows))]
        ]
    out.unlink(missing_ok=True)  # an old sheet from a previous run would mislead
    if not rows:
        return False
    contact_sheet(rows, out, thumb=112, workers=workers, title="look-alike pairs (id · label)")
    return True


def _overview_html(d: dict) -> list[str]:
    ds, cl, dd = d["dataset"], d["classes"], d["duplicates"]
    ratio = f"{cl['imbalance_ratio']:.1f}" if cl["imbalance_ratio"] else "n/a"
    rows = [
        ["data", ds["root"]],
        ["layout", ds["layout"]],
        ["train CSV", ds["train_csv"] or "—"],
        ["test set", f"{ds['test_source']} ({ds['test_rows']:,} images)"],
        ["training rows", ds["train_rows"]],
        ["classes", cl["n_classes"]],
        ["imbalance (largest / smallest)", f"{ratio}  ({cl['largest']} / {cl['smallest']})"],
        ["empty labels", d["labels"]["empty"]],
        ["duplicate ids (train)", len(d["ids"]["duplicate_train"])],
        ["unreadable train files", sum(d["files"]["train"]["problems"].values())],
        ["exact-duplicate groups (train)", dd["exact_groups"]],
        ["near-duplicate pairs (train)", dd["near_pairs"]],
        ["train images also in test", dd["train_test_leaks"]],
    ]
    parts = ["<h2>Overview</h2>", table(["", "value"], rows, numeric_from=9)]
    return parts + [f'<p class="muted">Note: {escape(note)}</p>' for note in ds["notes"]]


def _classes_html(d: dict) -> list[str]:
    cl = d["classes"]
    if cl["below_min"]:
        names = ", ".join(f"{k} ({v})" for k, v in cl["below_min"].items())
        verdict = (
            f'<p class="bad">{len(cl["below_min"])} class(es) below --min-count {cl["min_count"]}: {escape(names)}</p>'
        )
    else:
        verdict = f'<p class="ok">Every class has at least {cl["min_count"]} images.</p>'
    rows = [
        [r["class"], r["rows"], r["readable"], r["unreadable"], r["stored_gray"], r["gray_as_rgb"]]
        for r in cl["per_class"]
    ]
    return [
        "<h2>Classes</h2>",
        verdict,
        img(d["figures"]["class_counts"], "images per class"),
        table(["class", "rows", "readable", "unreadable", "stored grayscale", "grayscale stored as RGB"], rows),
    ]


def _problems_html(d: dict) -> list[str]:
    parts = ["<h2>Problems</h2>"]
    problems = d["files"]["problems"]
    if problems:
        more = " (first 200 listed; all in eda.json)" if len(problems) > 200 else ""
        parts.append(f'<p class="bad">{len(problems):,} missing or unreadable file(s){more}</p>')
        rows = [[p["set"], p["id"], p["kind"], p["error"], p["file"]] for p in problems[:200]]
        parts.append(table(["set", "id", "kind", "error", "file"], rows, numeric_from=9))
    else:
        parts.append('<p class="ok">Every image file exists and decodes.</p>')
    for a, b in d["labels"]["similar"]:
        parts.append(
            f'<p class="bad">Near-identical class names: "{escape(a)}" and "{escape(b)}" (one class spelled '
            "two ways? relabel with artkit clean --fix)</p>"
        )
    if d["paths"]["outside"]:
        parts.append(
            f'<p class="muted">{d["paths"]["outside"]:,} image path(s) point outside the data folder, e.g. '
            f"{escape(d['paths']['example'])}</p>"
        )
    if d["labels"]["empty"]:
        ids = escape(", ".join(d["labels"]["empty_ids"][:50]))
        parts.append(f'<p class="bad">{d["labels"]["empty"]} row(s) with an empty label: ids {ids}</p>')
    for which in ("train", "test"):
        dup = d["ids"][f"duplicate_{which}"]
        if dup:
            listed = escape(", ".join(f"{k} (x{v})" for k, v in list(dup.items())[:50]))
            parts.append(f'<p class="bad">{len(dup)} duplicate id(s) in {which}: {listed}</p>')
    dd = d["duplicates"]
    parts.append(
        f"<p>{dd['exact_groups']} group(s) of identical training images ({dd['exact_images']} images), "
        f"{dd['near_pairs']} near-duplicate pair(s) (pHash distance ≤ {dd['near_threshold']}), "
        f"{dd['train_test_leaks']} training image(s) also in the test set. "
        "<code>artkit clean</code> lists them one by one.</p>"
    )
    if "pairs" in d["figures"]:
        parts.append(img(d["figures"]["pairs"], "near-duplicate pairs and train images found in the test set"))
    return parts


def _geometry_html(d: dict, min_size: int) -> list[str]:
    rows = []
    for name in GEOMETRY:
        for which in ("train", "test"):
            s = d["geometry"].get(which, {}).get(name)
            if s and s.get("n"):
                rows.append([name, which, s["n"], s["min"], s["p5"], s["median"], s["mean"], s["p95"], s["max"]])
    hists = "".join(img(d["figures"][f"hist_{n}"], f"{n} histogram") for n in GEOMETRY)
    return [
        "<h2>Image geometry</h2>",
        table(["measure", "set", "images", "min", "p5", "median", "mean", "p95", "max"], rows, numeric_from=2),
        f"<p>{d['files']['train'].get('tiny', 0)} training image(s) with a side below {min_size} px.</p>",
        f'<div class="grid">{hists}</div>',
    ]


def _colour_html(d: dict) -> list[str]:
    rows = []
    for which in ("train", "test"):
        c = d["colour"].get(which)
        if c:
            modes = ", ".join(f"{k}: {v:,}" for k, v in c["modes"].items())
            formats = ", ".join(f"{k}: {v:,}" for k, v in c["formats"].items())
            rows.append([which, modes, formats, c["stored_gray"], c["gray_as_rgb"]])
    return [
        "<h2>Colour modes</h2>",
        table(["set", "modes", "formats", "stored grayscale", "grayscale stored as RGB"], rows, numeric_from=3),
        '<p class="muted">Every mode is converted to RGB when loaded; grayscale images are per class in the '
        "class table above.</p>",
    ]


def _recommended_html(d: dict) -> list[str]:
    rec = d["recommended"]
    return [
        "<h2>Recommended training recipe</h2>",
        f"<p>Train with <code>artkit train --config {escape(rec['file'])}</code> (in this folder); every choice "
        "carries its reason. Options not listed keep artkit's defaults, which are the best measured recipe "
        "(docs/benchmarks.md).</p>",
        f"<pre>{escape(rec['text'])}</pre>",
    ]


def _html(d: dict, config: EdaConfig) -> str:
    sc = d["scan"]
    parts = [
        *_overview_html(d),
        *_classes_html(d),
        *_problems_html(d),
        *_geometry_html(d, config.min_size),
        *_colour_html(d),
        *_recommended_html(d),
        "<h2>Contact sheet</h2>",
        img(d["figures"]["contact_sheet"], "sample images per class"),
        f'<p class="muted">Scanned {sc["files"]:,} files in {sc["seconds"]:.1f} s '
        f"({sc['cache_hits']:,} from the cache, {sc['decoded']:,} decoded).</p>",
    ]
    return page(f"EDA: {Path(d['dataset']['root']).name}", "\n".join(parts))
