"""The benchmark tables in the docs are generated from bench/results/*.csv and must match them."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate: python bench/tables.py docs/benchmarks.md docs/train.md"


def load_tables():
    """bench/tables.py, which is a script outside the package, loaded by path."""
    spec = importlib.util.spec_from_file_location("bench_tables", ROOT / "bench" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("doc", ["docs/benchmarks.md", "docs/train.md"])
def test_generated_tables_are_current(doc: str):
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert load_tables().render_doc(text) == text, REGENERATE


def test_a_changed_result_changes_the_doc(tmp_path: Path):
    tables = load_tables()
    results = tmp_path / "results"
    shutil.copytree(ROOT / "bench" / "results", results)
    csv = results / "ablation_30m.csv"
    lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    assert ",0.502,0.515," in lines[2]  # the defaults' first 30-minute run
    csv.write_text("".join(lines[:2] + [lines[2].replace(",0.502,", ",0.602,")] + lines[3:]), encoding="utf-8")
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    changed = tables.render_doc(text, results_dir=results)
    assert changed != text
    assert "| defaults | artkit defaults (no options) | 42 | 0.602 |" in changed
    assert tables.render_doc(text) == text  # the real results folder is untouched


def test_every_results_file_is_shown_in_the_docs():
    """A benchmark whose rows no doc table shows is a result nobody reads (bench/results/ensemble_pass.csv was one)."""
    marked = re.findall(
        r"<!-- table: ([\w.-]+)", "".join((ROOT / d).read_text() for d in ("docs/benchmarks.md", "docs/train.md"))
    )
    unshown = sorted({p.stem for p in (ROOT / "bench" / "results").glob("*.csv")} - set(marked))
    assert not unshown, f"no table in the docs shows these bench/results files: {unshown}"
