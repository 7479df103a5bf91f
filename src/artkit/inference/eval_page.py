"""``artkit eval``'s report.html: one page a competitor opens to see which paintings go wrong and why."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artkit.metrics import softmax
from artkit.render.html import heading, img, page, table
from artkit.writer import save_image, write_csv, write_text

TOP_LOSSES = 12
CONFUSED_PAIRS = 5
EXAMPLES_PER_PAIR = 6
MAP_POINTS = 3000  # at most this many images on the feature map


@dataclass(kw_only=True)
class Scored:
    """Everything eval knows about the scored images."""

    rows: pd.DataFrame  # id, path, label
    classes: list[str]
    y: np.ndarray
    logits: np.ndarray
    features: np.ndarray | None

    @property
    def probs(self) -> np.ndarray:
        return softmax(self.logits)

    @property
    def pred(self) -> np.ndarray:
        return self.logits.argmax(1)

    def losses(self) -> np.ndarray:
        return -np.log(np.clip(self.probs[np.arange(len(self.y)), self.y], 1e-12, None))


def top_losses(s: Scored, n: int = TOP_LOSSES) -> pd.DataFrame:
    """The misclassified images the model is most confident about, worst first."""
    wrong = np.flatnonzero(s.pred != s.y)
    order = wrong[np.argsort(-s.losses()[wrong])][:n]
    probs = s.probs
    return pd.DataFrame(
        {
            "row": order,
            "id": s.rows["id"].to_numpy()[order],
            "file": s.rows["path"].to_numpy()[order],
            "given": [s.classes[s.y[i]] for i in order],
            "predicted": [s.classes[s.pred[i]] for i in order],
            "probability": probs[order, s.pred[order]],
            "loss": s.losses()[order],
        }
    )


def write_review(s: Scored, path: Path) -> Path:
    """Every misclassified image, worst first, as ``id,label`` with the model's label: edit it and pass it to
    ``artkit clean --fix`` to relabel the rows that really were wrong."""
    rows = top_losses(s, n=len(s.y))
    review = pd.DataFrame(
        {
            "id": rows["id"],
            "label": rows["predicted"],
            "given": rows["given"],
            "probability": rows["probability"].round(4),
            "loss": rows["loss"].round(4),
            "file": rows["file"],
        }
    )
    write_csv(path, review)
    return path


def feature_map(s: Scored, path: Path) -> str | None:
    """PCA of the pooled features to 2-D (scikit-learn); returns the method, or None without features."""
    from sklearn.decomposition import PCA

    from artkit.plots import plot_feature_map

    if s.features is None or len(s.features) < 3:
        return None
    keep = np.random.default_rng(0).permutation(len(s.y))[:MAP_POINTS]
    points = PCA(n_components=2, random_state=0).fit_transform(s.features[keep])
    plot_feature_map(points, s.y[keep], (s.pred != s.y)[keep], s.classes, path, "PCA")
    return "PCA"


def confused_sheet(s: Scored, confused: list[dict], path: Path, workers: int | None) -> Path | None:
    """A strip of example images per most-confused pair (true A, predicted as B)."""
    from artkit.render.sheet import contact_sheet

    index = {c: k for k, c in enumerate(s.classes)}
    rows = []
    for pair in confused[:CONFUSED_PAIRS]:
        hits = np.flatnonzero((s.y == index[pair["true"]]) & (s.pred == index[pair["predicted"]]))
        hits = hits[np.argsort(-s.probs[hits, index[pair["predicted"]]])][:EXAMPLES_PER_PAIR]
        tiles = [(s.rows["path"].iloc[i], f"{s.rows['id'].iloc[i]} · {s.probs[i, s.pred[i]]:.0%}") for i in hits]
        rows.append((f"{pair['true']} → {pair['predicted']} ({pair['count']})", tiles))
    if not rows:
        return None
    return contact_sheet(rows, path, thumb=112, workers=workers, title="true → predicted as (id · probability)")


def top_loss_panels(
    s: Scored, losses: pd.DataFrame, ckpt: dict[str, Any], source: str, folder: Path, device: str = "auto"
) -> list[Path]:
    """Image | Grad-CAM for the predicted class, with given and predicted labels, for each top loss, computed on
    ``device`` (eval's --device)."""
    from artkit.data.images import load_image
    from artkit.inference.explain import Explainer
    from artkit.render.overlay import panel

    if losses.empty:
        return []
    explainer = Explainer(ckpt, source, layer=None, device=device)
    images = [load_image(p, ckpt["img_size"]) for p in losses["file"]]
    maps = explainer.explain_for(images, [s.classes.index(c) for c in losses["predicted"]])
    paths = []
    for k, (row, image, cam) in enumerate(zip(losses.itertuples(index=False), images, maps)):
        lines = [str(row.id), f"given: {row.given}", f"model: {row.predicted} {row.probability:.0%}"]
        paths.append(folder / f"loss_{k:02d}.png")
        save_image(panel(image, cam, lines, side=160), paths[-1])
    return paths


def _overall_html(metrics: dict, described: str, tta: str) -> list[str]:
    rows = [
        ["scored", described],
        ["images", metrics["rows"]],
        ["TTA", tta],
        ["accuracy", f"{metrics['acc']:.4f}"],
        ["macro-F1", f"{metrics['macro_f1']:.4f}"],
        ["weighted-F1", f"{metrics['weighted_f1']:.4f}"],
    ]
    return [heading("Overall"), table(["", "value"], rows, numeric_from=9)]


def _confused_html(confused: list[dict], figures: dict[str, str]) -> list[str]:
    if not confused:
        return [heading("Most confused pairs"), '<p class="ok">No image is misclassified.</p>']
    rows = [[p["true"], p["predicted"], p["count"]] for p in confused]
    return [
        heading("Most confused pairs"),
        table(["true", "predicted as", "images"], rows, numeric_from=2),
        img(figures["confused"], "examples of the most confused pairs"),
    ]


def _losses_html(losses: pd.DataFrame, loss_panels: list[str], review: str) -> list[str]:
    if not len(losses):
        return []
    intro = (
        "<p>The misclassified images the model is most sure about, worst first, with Grad-CAM for the class it "
        "chose. Wrong labels and leaks show up here first: review them in "
        f"<code>{html.escape(review)}</code> (id, label = the model's) and pass the edited file to "
        "<code>artkit clean --fix</code>.</p>"
    )
    pictures = "".join(img(p, f"top loss {k + 1}", 'style="width:340px"') for k, p in enumerate(loss_panels))
    rows = [
        [r.id, r.given, r.predicted, f"{r.probability:.3f}", f"{r.loss:.2f}"] for r in losses.itertuples(index=False)
    ]
    return [
        heading("Top losses"),
        intro,
        f'<div class="grid">{pictures}</div>',
        table(["id", "given", "predicted", "probability", "loss"], rows, numeric_from=3),
    ]


def report_html(
    title: str,
    metrics: dict,
    described: str,
    tta: str,
    figures: dict[str, str],
    losses: pd.DataFrame,
    loss_panels: list[str],
    confused: list[dict],
    map_method: str | None,
) -> str:
    parts = [
        *_overall_html(metrics, described, tta),
        heading("Per class"),
        img(figures["per_class"], "per-class precision, recall and F1"),
        heading("Confusion matrix"),
        img(figures["confusion"], "row-normalised confusion matrix"),
        *_confused_html(confused, figures),
        *_losses_html(losses, loss_panels, figures["review"]),
    ]
    if map_method:
        parts += [
            heading("Feature space"),
            f"<p>The pooled features of every scored image, projected to 2-D by "
            f"{map_method}: artists the model mixes up overlap; crosses are misclassified images.</p>",
            img(figures["features"], "2-D map of pooled features"),
        ]
    if "curves" in figures:
        parts += [heading("Training"), img(figures["curves"], "training curves")]
    return page(title, "\n".join(parts))


def write_report(
    out: Path,
    s: Scored,
    metrics: dict,
    confused: list[dict],
    described: str,
    tta: str,
    ckpt: dict[str, Any],
    checkpoint: str,
    workers: int | None,
    device: str = "auto",
) -> Path:
    """report.html with its pictures, and review.csv, in ``out``; its Grad-CAM panels computed on ``device``."""
    from artkit.plots import plot_curves, plot_per_class

    figures = {
        "per_class": "per_class.png",
        "confusion": "confusion_matrix_normalized.png",
        "confused": "confused.png",
        "features": "features.png",
        "review": "review.csv",
    }
    plot_per_class(metrics["per_class"], out / figures["per_class"])
    confused_sheet(s, confused, out / figures["confused"], workers)
    map_method = feature_map(s, out / figures["features"])
    write_review(s, out / figures["review"])
    losses = top_losses(s)
    panels = top_loss_panels(s, losses, ckpt, checkpoint, out, device)
    results = Path(checkpoint).parent / "results.csv"
    if results.is_file():
        from artkit.engine.runs import read_results

        plot_curves(read_results(results), out / "curves.png")
        figures["curves"] = "curves.png"
    text = report_html(
        f"eval: {Path(checkpoint).parent.name}/{Path(checkpoint).name}",
        metrics,
        described,
        tta,
        figures,
        losses,
        [p.name for p in panels],
        confused,
        map_method,
    )
    write_text(out / "report.html", text)
    return out / "report.html"
