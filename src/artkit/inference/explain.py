"""``artkit explain``: for each image, the model's top classes and a Grad-CAM heat map of where it looks;
one PNG per image and an ``explain.html`` gallery."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artkit.data.layout import IMAGE_EXTENSIONS, table_from_csv
from artkit.engine.checkpoint import load_checkpoint
from artkit.errors import ArtkitError
from artkit.inference.config import ExplainConfig
from artkit.inference.submission import labelled_csv
from artkit.progress import Reporter
from artkit.render.html import page
from artkit.writer import ensure_dir, save_image, write_text


@dataclass(kw_only=True)
class Explained:
    path: str
    picture: Path  # the PNG written for it
    top: list[tuple[str, float]]  # (class, probability), best first
    label: str | None = None  # the true class, when a labelled --csv gives it


@dataclass(kw_only=True)
class ExplainResult:
    out: Path
    gallery: Path
    layer: str
    items: list[Explained]


def image_paths(cfg: ExplainConfig) -> dict[str, str | None]:
    """The images named on the command line (files or folders) and in ``--csv``, in that order, each once (an
    image also inside a named folder is not explained twice) -> its true label when a labelled ``--csv`` gives
    one."""
    paths: dict[str, str | None] = {}
    seen: set[Path] = set()

    def add(path: str, label: str | None = None) -> None:
        key = Path(path).resolve()
        if key not in seen:
            seen.add(key)
            paths[path] = label
        elif label is not None:  # named twice; the CSV's label is worth keeping
            first = next(p for p in paths if Path(p).resolve() == key)
            paths[first] = label

    for item in cfg.images:
        p = Path(item)
        if p.is_dir():
            for f in sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS):
                add(str(f))
        elif p.is_file():
            add(str(p))
        else:
            raise ArtkitError(f"image or folder not found: {item}", "pass image files, folders of images, or --csv")
    if cfg.csv:
        labelled = labelled_csv(cfg.csv, cfg.columns)
        table = labelled[0] if labelled else table_from_csv(cfg.csv, cfg.columns, labelled=False)
        for row in table.itertuples(index=False):
            add(row.path, row.label if labelled else None)
    if not paths:
        raise ArtkitError("no images to explain", "pass image files or folders after the checkpoint, or --csv FILE")
    return paths


class Explainer:
    """A checkpoint's model with Grad-CAM, on its own preprocessing."""

    def __init__(self, ckpt: dict[str, Any], source: str, layer: str | None, device: str = "auto") -> None:
        from artkit.data.transforms import create_transform
        from artkit.engine.checkpoint import model_from_checkpoint
        from artkit.engine.device import Runtime
        from artkit.inference.cam import GradCam

        self.ckpt = ckpt
        self.classes = list(ckpt["classes"])
        self.rt = Runtime.create(device, "off")
        self.model = model_from_checkpoint(ckpt, source).to(self.rt.device)
        self.cam = GradCam(self.model, layer)
        size = ckpt["img_size"]
        self.transform = create_transform("none", size, "predict")

    def _batch(self, images: list):
        """RGB PIL images as the model's normalised input batch on its device."""
        import torch

        from artkit.engine.device import as_nchw, normalize

        batch = torch.stack([self.transform(image=np.asarray(im))["image"] for im in images]).to(self.rt.device)
        return normalize(as_nchw(batch), self.ckpt["mean"], self.ckpt["std"])

    def explain(self, images: list) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM maps for the top class (B, H, W) and class probabilities (B, K) of RGB PIL images."""
        import torch

        batch = self._batch(images)
        maps, logits = self.cam(batch)
        return maps.cpu().numpy(), torch.softmax(logits.float(), 1).cpu().numpy()

    def explain_for(self, images: list, classes: list[int]) -> np.ndarray:
        """Grad-CAM maps for given classes (e.g. the predicted class of misclassified images)."""
        import torch

        batch = self._batch(images)
        maps, _ = self.cam(batch, torch.tensor(classes, device=self.rt.device))
        return maps.cpu().numpy()


def run_explain(cfg: ExplainConfig, reporter: Reporter | None = None) -> ExplainResult:
    from PIL import Image

    from artkit.data.decode_cache import plan_decode_cache
    from artkit.data.images import load_image
    from artkit.render.overlay import panel

    labels = image_paths(cfg)
    paths = list(labels)
    ckpt = load_checkpoint(cfg.checkpoint)
    plan = plan_decode_cache(cfg.cache, paths, ckpt["img_size"])
    if reporter and plan.note:
        reporter.message(plan.note)
    decode = plan.cache.decode if plan.cache else load_image
    explainer = Explainer(ckpt, cfg.checkpoint, cfg.layer, cfg.device)
    out = ensure_dir(cfg.out)
    items = []
    for start in range(0, len(paths), cfg.batch_size):
        chunk = paths[start : start + cfg.batch_size]
        images = [Image.fromarray(np.asarray(decode(p, ckpt["img_size"]))) for p in chunk]
        maps, probs = explainer.explain(images)
        for path, image, cam, prob in zip(chunk, images, maps, probs):
            order = np.argsort(-prob)[: cfg.top_k]
            top = [(explainer.classes[k], float(prob[k])) for k in order]
            picture = out / f"{len(items):04d}_{Path(path).stem}.png"
            truth = [f"true: {labels[path]}"] if labels[path] is not None else []
            lines = [Path(path).name, *truth] + [f"{name}  {p:.1%}" for name, p in top]
            save_image(panel(image, cam, lines), picture)
            items.append(Explained(path=path, picture=picture, top=top, label=labels[path]))
        if reporter:
            reporter.progress("explain", min(start + cfg.batch_size, len(paths)), len(paths))
    gallery = out / "explain.html"
    write_text(gallery, gallery_html(items, cfg.checkpoint, explainer.cam.layer_name))
    return ExplainResult(out=out, gallery=gallery, layer=explainer.cam.layer_name, items=items)


def gallery_html(items: list[Explained], checkpoint: str, layer: str) -> str:
    cards = []
    for it in items:
        top = "".join(f"<li>{html.escape(c)} <b>{p:.1%}</b></li>" for c, p in it.top)
        truth = ""
        if it.label is not None:
            verdict = "right" if it.top and it.top[0][0] == it.label else "wrong"
            truth = f"<p>true: <b>{html.escape(it.label)}</b> ({verdict})</p>"
        cards.append(
            f'<figure><img src="{html.escape(it.picture.name)}" alt="{html.escape(Path(it.path).name)}">'
            f"<figcaption>{html.escape(it.path)}{truth}<ol>{top}</ol></figcaption></figure>"
        )
    intro = (
        f"<p>{len(items)} image(s) explained by <code>{html.escape(checkpoint)}</code>. Left: the image as the "
        f"model sees it; right: Grad-CAM on layer <code>{html.escape(layer)}</code> for the top class, red where "
        "the evidence for it is strongest.</p>"
    )
    css = "figure{display:inline-block;margin:8px;vertical-align:top}figcaption{font-size:.85em;max-width:460px}"
    return page("artkit explain", intro + '<div class="grid">' + "".join(cards) + "</div>", css)
