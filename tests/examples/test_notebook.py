"""examples/notebook.ipynb runs offline from top to bottom (its code cells in one Python process) and writes
the submissions it says it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebook.ipynb"


def code_of(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.slow
def test_the_notebook_runs_offline_and_writes_submissions(tmp_path: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-c", code_of(NOTEBOOK)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    truth = pd.read_csv(tmp_path / "demo_nb" / "data" / "test_labels.csv")
    for name in ("submission.csv", "ensemble.csv"):
        assert pd.read_csv(tmp_path / "demo_nb" / name)["id"].tolist() == truth["id"].tolist()
    scores = [float(line.rsplit(" ", 1)[1]) for line in done.stdout.splitlines() if "test macro-F1" in line]
    assert len(scores) == 2 and min(scores) > 0.5, done.stdout[-2000:]  # 5 classes: chance is 0.2
