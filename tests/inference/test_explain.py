"""artkit explain and the eval page: Grad-CAM that points at the evidence, a gallery, and report.html with every
section loading in a real browser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers import TINY, artkit, images_loaded_in_browser, make_dacon, random_checkpoint, read_text_csv

PATCH = (4, 4, 24, 24)  # left, top, right, bottom: where the evidence of class "patch" always is


def patch_dataset(root: Path, per_class: int = 40, seed: int = 0) -> Path:
    """64 x 64 noise; class 'patch' has a bright green square at PATCH, class 'plain' has none."""
    rng = np.random.default_rng(seed)
    for label in ("patch", "plain"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(40, 160, (64, 64, 3), dtype=np.uint8)
            if label == "patch":
                left, top, right, bottom = PATCH
                arr[top:bottom, left:right] = (30, 230, 40)
            Image.fromarray(arr).save(root / label / f"{label}_{i}.png")
    return root


@pytest.mark.slow
def test_grad_cam_peaks_on_the_evidence(tmp_path: Path):
    from artkit.data.images import load_image
    from artkit.engine.checkpoint import load_checkpoint
    from artkit.inference.explain import Explainer

    data = patch_dataset(tmp_path / "data")
    artkit(
        "train",
        data,
        "--model",
        "resnet10t",
        "--no-pretrained",
        "--img-size",
        "64",
        "--epochs",
        "6",
        "--aug",
        "none",
        "--batch-size",
        "16",
        "--workers",
        "0",
        "--lr",
        "0.003",
        "--warmup-epochs",
        "0",
        "--out",
        tmp_path / "runs",
    )
    best = tmp_path / "runs" / "train" / "best.pt"
    ckpt = load_checkpoint(best)
    assert ckpt["metrics"]["val_acc"] == 1.0  # the model did learn the patch
    explainer = Explainer(ckpt, str(best), layer="layer2")  # stride 8: an 8 x 8 map on 64 px images
    paths = sorted((data / "patch").glob("*.png"))[:12]
    maps = explainer.explain_for([load_image(p) for p in paths], [ckpt["classes"].index("patch")] * len(paths))
    left, top, right, bottom = PATCH
    inside = np.zeros((64, 64), bool)
    inside[top:bottom, left:right] = True
    peaks_inside = sum(bool(inside.flat[int(np.argmax(m))]) for m in maps)
    assert peaks_inside >= 10, f"the heat map peaked on the patch for {peaks_inside} of {len(paths)} images"
    assert np.mean([m[inside].mean() for m in maps]) > 2 * np.mean([m[~inside].mean() for m in maps])


@pytest.mark.slow
def test_explain_writes_a_picture_per_image_and_a_gallery(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs")
    best = tmp_path / "runs" / "train" / "best.pt"
    one = data / "train" / "0001.jpg"
    r = artkit("explain", best, one, data / "test", "--top-k", "2", "-o", tmp_path / "ex")
    pictures = sorted((tmp_path / "ex").glob("*.png"))
    assert len(pictures) == 1 + 7 and "gallery" in r.output
    gallery = (tmp_path / "ex" / "explain.html").read_text(encoding="utf-8")
    assert all(p.name in gallery for p in pictures) and gallery.count("<li>") == 2 * 8
    assert images_loaded_in_browser(tmp_path / "ex" / "explain.html", tmp_path) == (8, 8)
    r = artkit("explain", best, one, "--layer", "blocks.99", ok=False)
    assert r.exit_code == 2 and "no layer named 'blocks.99'" in r.output


@pytest.mark.slow
def test_explain_names_each_image_once_and_shows_the_true_label(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs")
    best = tmp_path / "runs" / "train" / "best.pt"
    test_one = sorted((data / "test").iterdir())[0]
    artkit("explain", best, test_one, data / "test", "-o", tmp_path / "twice")  # the image, and its folder
    assert len(list((tmp_path / "twice").glob("*.png"))) == len(list((data / "test").iterdir()))
    train = pd.read_csv(data / "train.csv", dtype=str).head(3)
    train["img_path"] = [str(data / p) for p in train["img_path"]]
    train.to_csv(tmp_path / "labelled.csv", index=False)
    artkit("explain", best, "--csv", tmp_path / "labelled.csv", "-o", tmp_path / "labelled")
    gallery = (tmp_path / "labelled" / "explain.html").read_text(encoding="utf-8")
    assert gallery.count("true: <b>") == 3 and all(f"true: <b>{a}</b>" in gallery for a in train["artist"])


def test_explain_works_for_vision_transformers(tmp_path: Path):
    from artkit.inference.explain import Explainer

    random_checkpoint(tmp_path / "vit.pt", "test_vit", img_size=64)
    explainer = Explainer(torch.load(tmp_path / "vit.pt", weights_only=True), "vit.pt", layer=None)
    maps, probs = explainer.explain([Image.new("RGB", (80, 70), (200, 30, 30))])
    assert explainer.cam.layer_name == "blocks.5" and maps.shape == (1, 64, 64) and probs.shape == (1, 3)


@pytest.mark.slow
def test_eval_report_has_every_section_and_loads_in_a_browser(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    artkit("train", data, *TINY, "--epochs", "2", "--out", tmp_path / "runs")
    best = tmp_path / "runs" / "train" / "best.pt"
    artkit("eval", best, "--data", data, "--out", tmp_path / "ev")
    page = (tmp_path / "ev" / "report.html").read_text(encoding="utf-8")
    for section in (
        "Overall",
        "Per class",
        "Confusion matrix",
        "Most confused pairs",
        "Top losses",
        "Feature space",
        "Training",
    ):
        slug = section.lower().replace(" ", "-")
        assert f'<h2 id="{slug}">{section}</h2>' in page, section  # report.html#top-losses opens there
    loaded, total = images_loaded_in_browser(tmp_path / "ev" / "report.html", tmp_path)
    assert loaded == total >= 6


@pytest.mark.slow
def test_review_csv_feeds_clean_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = make_dacon(tmp_path / "data")
    artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs")
    artkit("eval", tmp_path / "runs" / "train" / "best.pt", "--data", data, "--out", tmp_path / "ev")
    review = read_text_csv(tmp_path / "ev" / "review.csv")
    assert list(review.columns[:2]) == ["id", "label"] and len(review) > 0
    assert (review["label"] != review["given"]).all()  # only misclassified rows, with the model's label
    artkit("clean", data, "--fix", tmp_path / "ev" / "review.csv", "--out", tmp_path / "clean", "--workers", "1")
    cleaned = pd.read_csv(tmp_path / "clean" / "train_clean.csv", dtype=str).set_index("id")["artist"]
    first = review.iloc[0]
    assert cleaned[first["id"]] == first["label"]
