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
    modes, (ensemble, compiled) = rows[:2], rows[2:]
    assert [r["amp"] for r in rows] == ["off", "bf16", "off", "off"] and all(r["device"] == "cpu" for r in rows)
    assert all(float(r["train_vs_bare"]) > 0 and float(r["predict_vs_forward"]) > 0 for r in modes)
    assert "x a bare step" in done.stdout and float(rows[0]["cache_vs_off"]) > 0
    assert float(ensemble["ensemble_vs_predict"]) > 0 and "a 4-member ensemble takes" in done.stdout
    assert not ensemble["ensemble_memory_vs_predict"]  # a GPU's peak memory only
    assert float(compiled["compile_vs_default"]) > 0 and "--compile trains" in done.stdout


@pytest.mark.parametrize(("bf16", "modes"), [(True, ["bf16", "off", "fp16"]), (False, ["fp16", "off"])])
def test_on_a_gpu_the_precision_amp_auto_runs_is_measured_first(monkeypatch, bf16: bool, modes: list[str]):
    """bench_gpu.py may be stopped at its time limit: what users get by default is measured before the rest."""
    import torch

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    from bench_gpu import amp_modes

    from artkit.engine.device import choose_amp

    assert amp_modes(torch.device("cuda")) == modes
    picked = choose_amp("auto", torch.device("cuda"))[0]
    assert {torch.bfloat16: "bf16", torch.float16: "fp16"}[picked] == modes[0]
