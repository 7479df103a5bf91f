"""artkit eda: every planted problem appears in eda.json and report.html; clean data shows none;
the HTML page loads with every picture in a real headless browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from artkit.cli import app
from artkit.qa.config import EdaConfig
from artkit.qa.eda import run_eda

from helpers import LABELS, images_loaded_in_browser, make_clean, make_planted, picture


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.slow
def test_planted_problems_are_reported(tmp_path: Path):
    root = make_planted(tmp_path / "data")
    r = run_eda(EdaConfig(data=str(root), out=str(tmp_path / "eda"), workers=2, min_count=10))
    d = json.loads((tmp_path / "eda" / "eda.json").read_text(encoding="utf-8"))
    assert d == json.loads(json.dumps(r.data))  # what the report says is what the file says

    assert d["dataset"]["train_rows"] == 24 + 11 and d["dataset"]["test_rows"] == 7
    assert set(d["classes"]["counts"]) == set(LABELS)  # the empty label is not a class
    counts = list(d["classes"]["counts"].values())
    assert counts == sorted(counts, reverse=True)
    assert d["classes"]["imbalance_ratio"] == pytest.approx(max(counts) / min(counts))
    assert set(d["classes"]["below_min"]) == {k for k, v in d["classes"]["counts"].items() if v < 10}

    kinds = {(p["id"], p["kind"]) for p in d["files"]["problems"]}
    assert kinds == {("trunc", "truncated"), ("zero", "empty"), ("text", "not-an-image"), ("gone", "missing")}
    assert d["labels"]["empty"] == 1 and d["labels"]["empty_ids"] == ["nolabel"]
    assert d["ids"]["duplicate_train"] == {"001": 2} and d["ids"]["duplicate_test"] == {}
    gray = {row["class"]: row["gray_as_rgb"] for row in d["classes"]["per_class"]}
    assert gray == {LABELS[0]: 0, LABELS[1]: 1, LABELS[2]: 0}
    assert d["colour"]["train"]["gray_as_rgb"] == 1 and d["colour"]["train"]["stored_gray"] == 0
    assert d["files"]["train"]["tiny"] == 1
    assert d["duplicates"]["exact_groups"] == 2 and d["duplicates"]["near_pairs"] == 1
    assert d["duplicates"]["train_test_leaks"] == 1

    geo = d["geometry"]
    assert geo["train"]["width"]["min"] == 20 and geo["test"]["width"]["median"] == 64
    for name in ("class_counts", "hist_width", "hist_height", "hist_aspect", "hist_megapixels", "contact_sheet"):
        assert (tmp_path / "eda" / f"{d['figures'][name]}").stat().st_size > 1000
    page = r.report_html.read_text(encoding="utf-8")
    for src in re.findall(r'<img src="([^"]+)"', page):
        assert (tmp_path / "eda" / src).is_file()
    assert "Albrecht Dürer" in page and "truncated" in page


@pytest.mark.slow
def test_clean_data_reports_nothing(tmp_path: Path):
    root = make_clean(tmp_path / "data")
    d = run_eda(EdaConfig(data=str(root), out=str(tmp_path / "eda"), workers=2, min_count=5)).data
    assert d["files"]["problems"] == [] and d["labels"]["empty"] == 0
    assert d["ids"]["duplicate_train"] == {} and d["classes"]["below_min"] == {}
    assert d["duplicates"] == {
        "near_threshold": 8,
        "exact_groups": 0,
        "exact_images": 0,
        "near_pairs": 0,
        "train_test_leaks": 0,
    }
    assert d["colour"]["train"]["grayscale"] == 0 and d["files"]["train"]["tiny"] == 0
    assert d["classes"]["imbalance_ratio"] == 1.0


def test_folder_layout_without_test(tmp_path: Path):
    root = tmp_path / "folders"
    for c, name in enumerate(["cat", "dog"]):
        (root / name).mkdir(parents=True)
        for i in range(3):
            picture(50 + 10 * c + i).save(root / name / f"{name}{i}.png")
    r = run_eda(EdaConfig(data=str(root), out=str(tmp_path / "eda"), workers=1))
    assert r.class_counts == {"cat": 3, "dog": 3} and r.n_test == 0
    assert r.data["colour"]["train"]["formats"] == {"PNG": 6}
    assert any("no test set" in n for n in r.notes)


@pytest.mark.slow
def test_cli_eda_and_second_run_uses_cache(tmp_path: Path):
    root = make_planted(tmp_path / "data")
    out = tmp_path / "eda"
    runner = CliRunner()
    first = runner.invoke(app, ["eda", str(root), "--out", str(out), "--workers", "2", "--min-count", "10"])
    assert first.exit_code == 0, first.output
    assert "report" in first.output and "truncated" in first.output and "duplicate ids" in first.output
    assert (out / "report.html").is_file()
    second = runner.invoke(app, ["eda", "--data", str(root), "--out", str(out), "--workers", "2"])
    assert second.exit_code == 0, second.output
    d = json.loads((out / "eda.json").read_text(encoding="utf-8"))
    assert d["scan"]["decoded"] == 0 and d["scan"]["cache_hits"] == d["scan"]["files"] - 1  # all but the missing file


def test_cli_eda_user_errors_exit_2(tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(app, ["eda", str(tmp_path / "nope"), "--out", str(tmp_path / "eda")])
    assert res.exit_code == 2 and "data folder not found" in res.output
    root = make_clean(tmp_path / "data", per_class=2)
    res = runner.invoke(app, ["eda", str(root), "--out", str(tmp_path / "eda"), "--label-col", "painter"])
    assert res.exit_code == 2 and "painter" in res.output


def test_cli_help_stays_light():
    code = (
        "import sys, artkit.cli; "
        "print(sorted(m for m in ('matplotlib', 'cleanlab', 'artkit.scan', 'artkit.eda', 'artkit.clean') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- the page in a real browser


@pytest.mark.slow
def test_report_html_loads_every_picture_in_a_browser(tmp_path: Path):
    root = make_planted(tmp_path / "data")
    r = run_eda(EdaConfig(data=str(root), out=str(tmp_path / "eda"), workers=2))
    n_img = len(re.findall(r"<img ", r.report_html.read_text(encoding="utf-8")))
    assert n_img == 7 and "pairs.png" in r.report_html.read_text(encoding="utf-8")  # 6 + look-alike pairs
    assert images_loaded_in_browser(r.report_html, tmp_path) == (n_img, n_img)


@pytest.mark.slow
def test_recommended_yaml_gives_the_sizes_the_summary_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import artkit.data.recipe as recipe

    from helpers import make_dacon

    # a run samples image headers; eda measured every image: its reason must use eda's numbers
    monkeypatch.setattr(recipe, "median_size", lambda paths, sample=200: (9999.0, 9999.0))
    root = make_dacon(tmp_path / "data")
    r = run_eda(EdaConfig(data=str(root), out=str(tmp_path / "eda"), workers=1))
    g = r.data["geometry"]["train"]
    expected = f"training {g['width']['median']:.0f}x{g['height']['median']:.0f} px"
    text = (tmp_path / "eda" / "recommended.yaml").read_text(encoding="utf-8")
    assert expected in text and "9999" not in text
