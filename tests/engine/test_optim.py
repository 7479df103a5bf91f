"""The optimiser's companions: an EMA decay fitted to the run's length."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from artkit.engine import optim
from artkit.engine.config import TrainConfig
from artkit.engine.optim import ema_decay

from helpers import TINY, artkit, make_dacon


@pytest.mark.parametrize(
    ("updates", "decay"), [(3000, 0.999), (300, 0.99), (285, 1 - 3 / 285), (10, 0.9), (10**8, 0.9999)]
)
def test_fitted_ema_decay_averages_over_a_third_of_the_run(updates: int, decay: float):
    assert ema_decay(TrainConfig(), updates) == pytest.approx(decay)


def test_an_explicit_ema_decay_wins():
    assert ema_decay(TrainConfig(ema_decay=0.95), 3000) == 0.95


def test_ema_is_on_by_default_the_run_says_its_decay_and_a_time_budget_refits_it(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(optim, "EMA_DECAY_BOUNDS", (0.0, 1.0))  # tiny runs would all clip to 0.9
    data = make_dacon(tmp_path / "data")
    r = artkit("train", data, *TINY, "--epochs", "3", "--out", tmp_path / "runs", "--name", "fixed")  # EMA: default
    out = " ".join(r.output.split())  # Rich wraps long lines
    train_images = int(re.search(r"(\d+) train / \d+ val images", out).group(1))
    steps = -(-train_images // 8)  # TINY's batch of 8, the last one partial
    assert f"EMA of the weights (decay {1 - 3 / (3 * steps):.4f}, fitted to 3 epochs) is validated and saved" in out
    r = artkit("train", data, *TINY, "--ema", "--time", "6s", "--out", tmp_path / "runs", "--name", "budget")
    out = " ".join(r.output.split())
    assert "EMA of the weights (decay fitted to the epochs the time budget plans)" in out
    epochs, decay = re.search(r"(\d+) epoch\(s\) fit in the budget; EMA decay ([0-9.]+)", out).groups()
    assert float(decay) == pytest.approx(1 - 3 / (int(epochs) * steps), abs=1e-4)
