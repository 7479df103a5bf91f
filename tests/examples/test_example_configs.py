"""The example configs load with ``artkit train --config`` and recommend nothing the ablation shows losing."""

from __future__ import annotations

from pathlib import Path

import pytest

from artkit.engine.config import TrainConfig
from artkit.options import typed_mapping
from artkit.reader import load_yaml

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
# settings that scored lower than the defaults on held-out crops at 30 minutes over two seeds (docs/train.md,
# "Defaults, and why"; bench/results/ablation_30m.csv): option -> a test of the value
LOSING = {
    "lr": lambda v: v <= 1e-3 or v >= 5e-3,
    "layer_decay": lambda v: v >= 1,
    "cutmix": lambda v: v > 0,
    "mixup": lambda v: v > 0,
    "class_weights": lambda v: v != "none",
    "sampler": lambda v: v == "none",
    "label_smoothing": lambda v: v == 0,
    "batch_size": lambda v: v < 32,
}


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_config_loads_and_recommends_no_losing_setting(path: Path):
    values = typed_mapping(TrainConfig, {"data": "data", **load_yaml(path)}, str(path))  # as --config reads it
    losing = [f"{k}: {v}" for k, v in values.items() if k in LOSING and LOSING[k](v)]
    assert not losing, f"{path.name} recommends settings the ablation shows losing: {losing}"


def test_the_check_catches_a_losing_setting():
    assert LOSING["lr"](5e-4) and LOSING["cutmix"](1.0) and not LOSING["lr"](3e-3)
