"""The optimiser and its companions (engine/optim.py): layer-wise learning rates, the schedule, and an EMA decay
fitted to the run's length."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from artkit.engine import optim
from artkit.engine.config import OPTIMIZERS, TrainConfig
from artkit.engine.optim import (
    build_optimizer,
    build_scheduler,
    effective_layer_decay,
    ema_decay,
    keep_kernels,
    layer_decay_note,
)
from artkit.engine.session import validate_config
from artkit.errors import ArtkitError
from artkit.models.factory import create_model

from helpers import TINY, artkit, make_dacon


def _lr_of(optimizer, model, name):
    param = dict(model.named_parameters())[name]
    return next(g["lr"] for g in optimizer.param_groups if any(p is param for p in g["params"]))


def test_layer_decay_gives_the_classifier_the_full_lr_and_earlier_layers_less():
    model = create_model("test_efficientnet", 3)
    cfg = TrainConfig(lr=1e-3, layer_decay=0.5, warmup_epochs=0, epochs=2)
    opt = build_optimizer(cfg, model)
    sched = build_scheduler(cfg, opt, updates_per_epoch=10)
    sched.step_update(1)
    head, stem = _lr_of(opt, model, "classifier.weight"), _lr_of(opt, model, "conv_stem.weight")
    assert head == pytest.approx(max(g["lr"] for g in opt.param_groups))
    assert stem < head * 0.5  # at least one decay step between stem and classifier

    plain = build_optimizer(TrainConfig(lr=1e-3, layer_decay=1), model)
    assert len({g["lr"] for g in plain.param_groups}) == 1


def test_the_default_layer_decay_leaves_a_model_without_layer_groups_at_one_rate():
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    model(torch.zeros(1, 3, 8, 8))
    cfg = TrainConfig(lr=1e-3)
    assert cfg.layer_decay == 0.85 and effective_layer_decay(cfg, model) is None
    assert {g["lr"] for g in build_optimizer(cfg, model).param_groups} == {1e-3}
    assert "no layer groups" in layer_decay_note(cfg, model)


def test_layer_decay_is_off_for_a_model_trained_from_random_weights():
    model = create_model("test_efficientnet", 3)
    scratch = TrainConfig(lr=1e-3, pretrained=False)
    assert len({g["lr"] for g in build_optimizer(scratch, model).param_groups}) == 1
    assert "random weights" in layer_decay_note(scratch, model)
    from_file = TrainConfig(lr=1e-3, pretrained=False, weights="w.pt")
    assert effective_layer_decay(from_file, model) == 0.85 and layer_decay_note(from_file, model) is None


def test_layer_decay_out_of_range_is_a_clear_error():
    with pytest.raises(ArtkitError, match="--layer-decay"):
        validate_config(TrainConfig(layer_decay=1.5))


@pytest.mark.parametrize(
    ("updates", "decay"), [(3000, 0.999), (300, 0.99), (285, 1 - 3 / 285), (10, 0.9), (10**8, 0.9999)]
)
def test_fitted_ema_decay_averages_over_a_third_of_the_run(updates: int, decay: float):
    assert ema_decay(TrainConfig(), updates) == pytest.approx(decay)


def test_an_explicit_ema_decay_wins():
    assert ema_decay(TrainConfig(ema_decay=0.95), 3000) == 0.95


@pytest.mark.slow
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


def test_a_one_update_run_builds_its_schedule_without_timms_warning(caplog: pytest.LogCaptureFixture):
    import logging

    import torch

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with caplog.at_level(logging.WARNING):
        build_scheduler(TrainConfig(data="d", epochs=1), optimizer, updates_per_epoch=1)
    assert "no effect" not in caplog.text


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimiser_uses_torchs_fused_kernels_where_the_device_has_them(name: str, monkeypatch):
    import torch

    model = create_model("test_efficientnet", 3)
    fused = build_optimizer(TrainConfig(optimizer=name), model)
    assert fused.defaults.get("fused") is (optim.fused_kernels_for(model) or None)
    monkeypatch.setattr(optim, "fused_kernels_for", lambda model: False)
    plain = build_optimizer(TrainConfig(optimizer=name), model)
    assert not plain.defaults.get("fused")
    model.zero_grad()
    model(torch.ones(2, 3, 32, 32)).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    before = [p.detach().clone() for p in model.parameters()]
    fused.step()
    after_fused = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p, b, g in zip(model.parameters(), before, grads):
            p.copy_(b)
            p.grad = g.clone()
    plain.step()
    assert not plain.param_groups[0].get("fused")
    for a, b in zip(after_fused, model.parameters()):
        torch.testing.assert_close(b.detach(), a, rtol=1e-5, atol=1e-6)


def test_a_saved_state_does_not_switch_the_optimisers_kernels():
    model = create_model("test_efficientnet", 3)
    opt = build_optimizer(TrainConfig(), model)
    state = opt.state_dict()
    for group in state["param_groups"]:  # as saved by another device, torch or artkit
        group["fused"], group["foreach"] = (not opt.defaults.get("fused")) or None, None
    keep_kernels(opt, state)
    assert all(g["fused"] == opt.defaults.get("fused") for g in opt.param_groups)
