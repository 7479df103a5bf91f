"""Winning defaults that depend on the data (auto), a time budget instead of epochs, and eda's recipe."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from artkit.engine import budget as budget_module
from artkit.engine import kfold
from artkit.engine.auto import resolve_auto
from artkit.engine.budget import EpochPlanner, TimeBudget
from artkit.engine.config import TrainConfig, parse_duration
from artkit.engine.train_command import train
from artkit.errors import ArtkitError
from artkit.options import load_config

from helpers import TINY, artkit, make_dacon, painting

TINY_CFG = dict(
    model="test_efficientnet", pretrained=False, img_size=32, batch_size=8, workers=0, lr=0.01, warmup_epochs=0.0
)


def whole_image_test_set(root: Path) -> Path:
    """make_dacon, but with test images as large as the training images (not crops)."""
    import numpy as np

    data = make_dacon(root)
    rng = np.random.default_rng(3)
    for path in (data / "test").glob("*.jpg"):
        painting(rng, 0, (48, 40)).save(path)
    return data


def test_auto_trains_on_crops_when_the_test_images_are_crops(tmp_path: Path):
    crops = resolve_auto(TrainConfig(data=str(make_dacon(tmp_path / "crops")), aug="auto", sampler="auto"))
    assert crops.aug == "crop" and "crops" in crops.chosen["aug"] and "0.25 of the area" in crops.chosen["aug"]
    whole = resolve_auto(TrainConfig(data=str(whole_image_test_set(tmp_path / "whole")), aug="auto"))
    assert whole.aug == "light" and "look like the training images" in whole.chosen["aug"]
    assert resolve_auto(TrainConfig(data=str(tmp_path / "crops"), aug="none")).aug == "none"  # explicit wins


def test_auto_sampler_follows_the_imbalance(tmp_path: Path):
    skewed = make_dacon(tmp_path / "skewed", per_class=(12, 3, 4))
    assert resolve_auto(TrainConfig(data=str(skewed), sampler="auto")).sampler == "sqrt"  # 4x
    even = make_dacon(tmp_path / "even", per_class=(6, 5, 6))
    assert resolve_auto(TrainConfig(data=str(even), sampler="auto")).sampler == "none"


def test_the_run_says_what_auto_chose_and_why(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    r = artkit("train", data, *TINY, "--epochs", "1", "--aug", "auto", "--out", tmp_path / "runs")
    assert "--aug auto → crop: test images are crops" in " ".join(r.output.split())
    saved = load_config(TrainConfig, tmp_path / "runs" / "train" / "config.yaml")
    assert saved.aug == "crop" and saved.chosen["aug"].startswith("crop: test images are crops")


@pytest.mark.slow
def test_time_budget_ends_within_budget_and_its_schedule_ends_at_the_last_step(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    budget = 20.0
    start = time.perf_counter()
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "runs"), time="20s", min_lr=1e-5, **TINY_CFG))
    elapsed = time.perf_counter() - start
    assert 0.75 * budget <= elapsed <= 1.15 * budget, elapsed  # the one wall-clock check: loose, for a busy CI
    rows = pd.read_csv(result.run_dir / "results.csv")
    saved = load_config(TrainConfig, result.run_dir / "config.yaml")
    assert saved.epochs == len(rows) == result.epochs_run > 5  # the planned epochs are the epochs run
    assert rows["lr"].iloc[-1] == pytest.approx(1e-5)  # the cosine schedule reached its end at the last update
    assert rows["lr"].iloc[-2] > 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(("batch_size", "grad_accum"), [(8, 1), (32, 1), (4, 2)])
def test_a_cut_within_the_last_epoch_leaves_the_schedule_at_its_end(
    tmp_path: Path, monkeypatch, batch_size: int, grad_accum: int
):
    # deterministic form of a CI failure: out of time at the probe step (an epoch's last, with 1-2 steps), and
    # the rebuilt schedule was set to the update count of the epoch's start, one epoch short of its end
    def cut_in_the_third_epoch(self: EpochPlanner, step: int, seconds: float) -> bool:
        self.ended_early = len(self.epoch_seconds) == 2
        return self.ended_early

    monkeypatch.setattr(EpochPlanner, "from_steps", lambda self, done, steps, seconds, first_step: 6)
    monkeypatch.setattr(EpochPlanner, "total", lambda self, done, seconds: 6)
    monkeypatch.setattr(EpochPlanner, "out_of_time", cut_in_the_third_epoch)
    cfg = {**TINY_CFG, "batch_size": batch_size, "grad_accum": grad_accum}
    result = train(TrainConfig(data=str(make_dacon(tmp_path / "data")), out=str(tmp_path), time="1h", **cfg))
    rows = pd.read_csv(result.run_dir / "results.csv")
    assert result.epochs_run == len(rows) == 3
    assert rows["lr"].iloc[-1] == pytest.approx(TrainConfig().min_lr) and rows["lr"].iloc[-2] > 2 * rows["lr"].iloc[-1]


@pytest.mark.parametrize(
    ("elapsed", "planned", "total"),
    [
        (49, 8, 9),  # 48 s and 3 s of slack would fit 5 more of 10 s: the plan grows, one epoch at a time
        (49, 12, 10),  # too many planned: the plan shrinks to what fits at once
        (49, 5, 5),  # the schedule has ended: not lengthened, however much time is left
        (94, 8, 6),  # 3 s left and 3 s of slack: half of the planned next epoch fits, so it is kept
        (99, 8, 5),  # not even half of it fits: the run ends now
    ],
)
def test_the_plan_after_an_epoch_ends_with_its_schedule(elapsed: float, planned: int, total: int):
    budget = TimeBudget(seconds=100, started=time.perf_counter() - elapsed)  # 3 s of it reserved for the end
    planner = EpochPlanner(budget=budget, steps_per_epoch=10, val_per_train_image=0.2)
    assert planner.after_epoch(5, seconds=10, planned=planned) == total


@pytest.mark.parametrize(("steps_per_epoch", "probe"), [(1, 1), (2, 2), (10, 3), (100, 10)])
def test_epochs_of_fewer_than_three_steps_are_still_planned_within_the_epoch(steps_per_epoch: int, probe: int):
    # with a probe longer than the epoch, the run could end one epoch before the schedule did (a CI failure)
    planner = EpochPlanner(budget=TimeBudget(seconds=10), steps_per_epoch=steps_per_epoch, val_per_train_image=0.2)
    assert planner.probe_steps() == probe


@pytest.mark.slow
def test_time_budget_with_folds_is_for_all_folds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = make_dacon(tmp_path / "data")
    shares, real_fit_new = [], kfold.fit_new

    def fit_new(cfg, run_dir, reporter, budget=None):
        shares.append(budget.seconds)
        return real_fit_new(cfg, run_dir, reporter, budget)

    monkeypatch.setattr(kfold, "fit_new", fit_new)
    # a clock that moves 0.1 s at each reading: the same plan on a loaded machine (the suite's) as on an idle one
    readings = iter(range(10**9))
    monkeypatch.setattr(budget_module, "now", lambda: next(readings) * 0.1)
    result = train(TrainConfig(data=str(data), out=str(tmp_path / "runs"), time="12s", folds=2, **TINY_CFG))
    assert len(shares) == 2 and sum(shares) <= 12 and shares[0] <= 6  # a share of what is left, not 12 s a fold
    assert all(f.epochs_run >= 1 for f in result.folds) and (result.run_dir / "oof.csv").is_file()


@pytest.mark.slow
def test_resume_with_a_new_time_budget_continues(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    first = train(TrainConfig(data=str(data), out=str(tmp_path / "runs"), epochs=2, **TINY_CFG))
    resumed = train(TrainConfig(resume=str(first.run_dir), time="6s"), explicit={"resume", "time"})
    assert resumed.epochs_run > 2 and [r["epoch"] for r in resumed.rows[:3]] == [1, 2, 3]


def test_durations():
    assert parse_duration("30m") == 1800 and parse_duration("1h30m") == 5400 and parse_duration("45s") == 45
    with pytest.raises(ArtkitError, match="give a unit"):
        parse_duration("30")


@pytest.mark.slow
def test_eda_recommendation_loads_with_config_and_trains(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = make_dacon(tmp_path / "data", per_class=(12, 3, 4))
    r = artkit("eda", data, "--out", tmp_path / "eda", "--workers", "1")
    assert "artkit train --config" in r.output
    rec = tmp_path / "eda" / "recommended.yaml"
    text = rec.read_text(encoding="utf-8")
    assert "aug: crop  # test images are crops" in text and "sampler: sqrt  # classes are imbalanced" in text
    assert yaml.safe_load(text)["data"] == str(data.resolve())
    artkit("train", "--config", rec, *TINY, "--epochs", "1", "--out", tmp_path / "runs")
    saved = load_config(TrainConfig, tmp_path / "runs" / "train" / "config.yaml")
    assert (saved.aug, saved.sampler, saved.data) == ("crop", "sqrt", str(data.resolve()))
    assert "Recommended training recipe" in (tmp_path / "eda" / "report.html").read_text(encoding="utf-8")
