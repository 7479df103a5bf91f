"""artkit clean: each planted problem under its exact issue name, nothing on clean data, the drop
policy, --fix relabels, label issues from out-of-fold probabilities, and user files left untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from artkit.cli import app
from artkit.data.layout import read_table, table_from_csv
from artkit.data.options import Columns
from artkit.qa.clean import run_clean
from artkit.qa.config import DEFAULT_DROP, ISSUES, CleanConfig

from helpers import LABELS, LEAKED_TRAIN_ID, artkit, make_clean, make_planted, picture, read_text_csv, sha256_tree


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(tmp_path / "cache"))


def ids_with(issues: pd.DataFrame, issue: str) -> set[str]:
    return set(issues.loc[issues["issue"] == issue, "id"])


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    return make_planted(tmp_path / "data")


def test_every_planted_problem_under_its_issue_name(planted: Path, tmp_path: Path):
    before = sha256_tree(planted)
    r = run_clean(CleanConfig(data=str(planted), out=str(tmp_path / "clean"), workers=2))
    issues = read_text_csv(r.issues_csv)
    assert list(issues.columns) == ["id", "file", "issue", "detail", "action"]
    assert set(issues["issue"]) <= set(ISSUES)

    assert ids_with(issues, "unreadable") == {"trunc", "zero", "text", "gone"}
    unreadable = issues[issues["issue"] == "unreadable"].set_index("id")["detail"]
    assert unreadable["trunc"].startswith("truncated") and unreadable["zero"].startswith("empty")
    assert unreadable["text"].startswith("not-an-image") and unreadable["gone"].startswith("missing")
    # both members of each pair appear
    assert ids_with(issues, "exact-duplicate") == {"000", "conflict", "009", "samecopy"}
    assert ids_with(issues, "conflicting-labels") == {"000", "conflict"}
    assert ids_with(issues, "near-duplicate") == {"016", "resized"}
    assert ids_with(issues, "train-test-leak") == {LEAKED_TRAIN_ID, "TEST_LEAK"}
    assert ids_with(issues, "duplicate-id") == {"001"} and (issues["issue"] == "duplicate-id").sum() == 2
    assert ids_with(issues, "grayscale") == {"gray"}
    assert ids_with(issues, "tiny") == {"tiny"}
    assert ids_with(issues, "empty-label") == {"nolabel"}
    assert "label-issue" not in set(issues["issue"])  # needs --oof
    gray = issues[issues["issue"] == "grayscale"].iloc[0]
    assert gray["action"] == "keep; converted to RGB at load" and gray["file"].endswith("gray.jpg")

    # the default policy
    assert list(r.drop) == list(DEFAULT_DROP)
    kept = read_text_csv(r.train_clean_csv)
    dropped = set(read_text_csv(planted / "train.csv")["id"]) - set(kept["id"])
    assert dropped == {"trunc", "zero", "text", "gone", "nolabel", "001", "000", "conflict", "samecopy"}
    assert {"009", "016", "resized", "gray", "tiny", LEAKED_TRAIN_ID} <= set(kept["id"])
    assert r.rows_out == len(kept) == r.rows_in - 10  # id 001 has two rows
    assert sha256_tree(planted) == before  # images and CSVs untouched


def test_clean_data_has_no_issues(tmp_path: Path):
    root = make_clean(tmp_path / "data")
    r = run_clean(CleanConfig(data=str(root), out=str(tmp_path / "clean"), workers=2))
    assert r.counts == {} and len(read_text_csv(r.issues_csv)) == 0
    assert r.contact_sheet is None and r.rows_out == r.rows_in == 24
    # with nothing dropped, the cleaned CSV is the original, text for text, but for image paths made
    # relative to the output folder
    original, cleaned = read_text_csv(root / "train.csv"), read_text_csv(r.train_clean_csv)
    assert list(cleaned.columns) == list(original.columns)
    pd.testing.assert_frame_equal(cleaned[["id", "artist"]], original[["id", "artist"]])
    assert cleaned["img_path"].iloc[0] == "../data/train/0000.jpg"


def test_cleaned_csv_reads_back_with_the_same_images(planted: Path, tmp_path: Path):
    r = run_clean(CleanConfig(data=str(planted), out=str(tmp_path / "clean"), workers=2))
    read = read_table(r.train_clean_csv, Columns(), labelled=True)
    table = read.table
    original = table_from_csv(planted / "train.csv", Columns(), labelled=True, tolerant=True)
    assert read.label_col == "artist"
    assert all(Path(p).is_file() for p in table["path"])
    merged = table.merge(original.drop_duplicates("id", keep=False), on="id", suffixes=("", "_orig"))
    assert (merged["path"] == merged["path_orig"]).all() and (merged["label"] == merged["label_orig"]).all()
    assert "Albrecht Dürer" in set(table["label"]) and "Albrecht Du rer" in set(table["label"])


def test_drop_policy_and_fixes(planted: Path, tmp_path: Path):
    fixes = tmp_path / "fixes.csv"
    pd.DataFrame({"id": ["nolabel", "009"], "label": [LABELS[0], LABELS[2]]}).to_csv(fixes, index=False)
    r = run_clean(
        CleanConfig(data=str(planted), out=str(tmp_path / "c1"), workers=2, drop=["grayscale", "tiny"], fix=fixes)
    )
    kept = read_text_csv(r.train_clean_csv).set_index("id", drop=False)
    original = read_text_csv(planted / "train.csv")
    assert set(original["id"]) - set(kept["id"]) == {"gray", "tiny"}
    assert kept.at["nolabel", "artist"] == LABELS[0] and r.relabelled == 2
    # the relabel of 009 makes its byte copy a conflict: both are now flagged
    issues = read_text_csv(r.issues_csv)
    assert {"009", "samecopy"} <= ids_with(issues, "conflicting-labels")
    assert "nolabel" not in ids_with(issues, "empty-label")
    assert set(issues.loc[issues["action"] == "drop", "id"]) == {"gray", "tiny"}
    # every other cell is the original text, rows in the original order
    expected = original[~original["id"].isin(["gray", "tiny"])].reset_index(drop=True)
    expected.loc[expected["id"] == "nolabel", "artist"] = LABELS[0]
    expected.loc[expected["id"] == "009", "artist"] = LABELS[2]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True)[["id", "artist"]], expected[["id", "artist"]])

    none = run_clean(CleanConfig(data=str(planted), out=str(tmp_path / "c2"), workers=2, drop=["none"]))
    assert none.rows_out == none.rows_in and none.dropped == {}
    dup = run_clean(
        CleanConfig(data=str(planted), out=str(tmp_path / "c3"), workers=2, drop=["exact-duplicate", "duplicate-id"])
    )
    kept = read_text_csv(dup.train_clean_csv)
    assert "000" in set(kept["id"]) and "conflict" not in set(kept["id"])  # first copy kept
    assert "009" in set(kept["id"]) and "samecopy" not in set(kept["id"])
    assert "001" not in set(kept["id"])  # an id with two labels: every row dropped


def _oof(root: Path, path: Path, wrong: dict[str, str]) -> Path:
    """Confident, correct out-of-fold probabilities except for the rows in ``wrong`` (id -> predicted class)."""
    train = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(0)
    rows = []
    for i, label in zip(train["id"], train["artist"]):
        target = wrong.get(i, label)
        p = rng.dirichlet(np.ones(len(LABELS))) * 0.15
        p[LABELS.index(target)] += 0.85
        rows.append([i, label, *p])
    frame = pd.DataFrame(rows, columns=["id", "label", *LABELS])
    frame.to_csv(path, index=False, encoding="utf-8")
    return path


def test_label_issues_from_out_of_fold_probabilities(tmp_path: Path):
    root = make_clean(tmp_path / "data")
    wrong = {"002": LABELS[2], "013": LABELS[0]}
    oof = _oof(root, tmp_path / "oof.csv", wrong)
    r = run_clean(CleanConfig(data=str(root), out=str(tmp_path / "clean"), workers=2, oof=oof))
    issues = read_text_csv(r.issues_csv)
    assert ids_with(issues, "label-issue") == set(wrong) and set(issues["issue"]) == {"label-issue"}
    ranked = read_text_csv(r.label_issues_csv)
    assert set(ranked["id"]) == set(wrong)
    assert dict(zip(ranked["id"], ranked["suggested"])) == wrong
    q = ranked["quality"].astype(float).tolist()
    assert q == sorted(q) and ranked["rank"].tolist() == ["1", "2"]
    assert r.rows_out == r.rows_in  # reported, not dropped by default
    action = issues.set_index("id").at["002", "action"]
    assert "--fix" in action and LABELS[2] in action

    dropped = run_clean(CleanConfig(data=str(root), out=str(tmp_path / "c2"), workers=2, oof=oof, drop=["label-issue"]))
    assert set(read_text_csv(root / "train.csv")["id"]) - set(read_text_csv(dropped.train_clean_csv)["id"]) == set(
        wrong
    )


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.drop(columns=["label"]), "no column label"),
        (lambda f: f.drop(columns=[LABELS[1]]), "have no probability column"),
        (lambda f: f.assign(id=["nope"] + f["id"].tolist()[1:]), "not in the training data"),
        (lambda f: f.assign(**{LABELS[0]: "x"}), "non-number"),
        (lambda f: f.assign(**{LABELS[0]: 5.0}), "between 0 and 1"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate id"),
    ],
)
def test_bad_oof_files_are_clear_user_errors(tmp_path: Path, mutate, message):
    root = make_clean(tmp_path / "data", per_class=3)
    good = _oof(root, tmp_path / "oof.csv", {})
    bad = tmp_path / "bad.csv"
    mutate(pd.read_csv(good, dtype=str, keep_default_na=False)).to_csv(bad, index=False)
    res = CliRunner().invoke(app, ["clean", str(root), "--out", str(tmp_path / "clean"), "--oof", str(bad)])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_cli_clean_end_to_end(planted: Path, tmp_path: Path):
    before = sha256_tree(planted)
    out = tmp_path / "clean"
    runner = CliRunner()
    res = runner.invoke(app, ["clean", str(planted), "--out", str(out), "--workers", "2"])
    assert res.exit_code == 0, res.output
    for word in ("unreadable", "exact-duplicate", "train-test-leak", "train_clean.csv", "dropped"):
        assert word in res.output
    assert (out / "flagged.png").stat().st_size > 1000 and (out / "clean.json").is_file()
    assert sha256_tree(planted) == before

    res = runner.invoke(app, ["clean", str(planted), "--out", str(out), "--drop", "grayscale,bogus"])
    assert res.exit_code == 2 and "bogus" in res.output
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("id,label\nnot-an-id,x\n", encoding="utf-8")
    res = runner.invoke(app, ["clean", str(planted), "--out", str(out), "--fix", str(fixes)])
    assert res.exit_code == 2 and "not-an-id" in res.output
    # cleaning the cleaned CSV into its own folder would overwrite the input: refused
    res = runner.invoke(app, ["clean", str(planted), "--train-csv", str(out / "train_clean.csv"), "--out", str(out)])
    assert res.exit_code == 2 and "never overwrites" in res.output


def test_folder_layout_writes_a_dacon_csv(tmp_path: Path):
    root = tmp_path / "folders"
    for c, name in enumerate(["cat", "dog"]):
        (root / "train" / name).mkdir(parents=True)
        for i in range(3):
            picture(70 + 10 * c + i).save(root / "train" / name / f"{name}{i}.png")
    (root / "train" / "dog" / "broken.png").write_bytes(b"")
    r = run_clean(CleanConfig(data=str(root), out=str(tmp_path / "out" / "clean"), workers=1))
    cleaned = read_text_csv(r.train_clean_csv)
    assert list(cleaned.columns) == ["id", "img_path", "label"] and len(cleaned) == 6
    table = table_from_csv(r.train_clean_csv, Columns(), labelled=True)
    assert all(Path(p).is_file() for p in table["path"]) and sorted(set(table["label"])) == ["cat", "dog"]
    assert ids_with(read_text_csv(r.issues_csv), "unreadable") == {"broken"}


def test_cli_help_names_every_issue_and_the_default_policy():
    help_text = " ".join(artkit("clean", "--help").output.split()).replace("│ ", "")
    for issue in ISSUES:
        assert issue in help_text, issue
    assert ",".join(DEFAULT_DROP) in help_text.replace(" ", "")
