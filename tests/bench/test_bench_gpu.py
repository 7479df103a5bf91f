"""bench/bench_gpu.py is ready for the first GPU: its dry mode runs every measurement on the CPU at tiny sizes."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_gpu.py"


@pytest.mark.slow
def test_the_gpu_benchmark_runs_dry_on_the_cpu(tmp_path: Path):
    out = tmp_path / "gpu.csv"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry", "--results", str(out)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["amp"] for r in rows] == ["off", "bf16"] and all(r["device"] == "cpu" for r in rows)
    assert all(float(r["train_vs_bare"]) > 0 and float(r["predict_vs_forward"]) > 0 for r in rows)
    assert "x a bare step" in done.stdout and float(rows[0]["cache_vs_off"]) > 0
    assert float(rows[0]["compile_vs_default"]) > 0 and "--compile trains" in done.stdout
