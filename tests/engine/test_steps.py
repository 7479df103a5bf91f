"""The engine's loops and bookkeeping objects, without the rest of a run."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from artkit.engine import steps
from artkit.engine.device import Runtime
from artkit.engine.steps import (
    SYNC_EVERY,
    NonFiniteLoss,
    TrainParts,
    epoch_updates,
    predict_logits,
    predict_logits_of,
    train_one_epoch,
    updates_through,
)
from artkit.engine.stopping import EarlyStopping
from artkit.models.losses import create_loss

CPU = Runtime(device=torch.device("cpu"))


def _batches(n: int, batch: int = 4, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))


def _parts(model: nn.Module, lr: float = 0.1, grad_accum: int = 1) -> TrainParts:
    return TrainParts(
        model=model,
        criterion=create_loss("ce"),
        optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        grad_accum=grad_accum,
    )


def test_one_update_per_grad_accum_steps_and_the_loss_falls():
    torch.manual_seed(0)
    model = Tiny()
    data = _batches(32)
    stats = train_one_epoch(_parts(model, grad_accum=3), data, CPU, num_updates=10)
    assert stats.num_updates == 10 + 3  # 8 batches: updates after 3, 6 and the last
    assert [updates_through(step, 8, 3) for step in range(1, 9)] == [0, 0, 1, 1, 1, 2, 2, 3]  # a time budget's count
    assert epoch_updates(8, 3) == 3 and epoch_updates(9, 3) == 3 and epoch_updates(8, 1) == 8
    losses = [train_one_epoch(_parts(model), data, CPU, 0).loss for _ in range(5)]
    assert losses[-1] < stats.loss and losses == sorted(losses, reverse=True)


def test_a_nan_loss_stops_the_epoch():
    model = Tiny()
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLoss, match="loss became nan"):
        train_one_epoch(_parts(model), _batches(8), CPU, 0)


def test_predict_keeps_order_and_averages_views():
    model = Tiny().eval()
    data = _batches(10, batch=3)
    logits, targets = predict_logits(model, data, CPU)
    x = torch.cat([b[0] for b in data])
    with torch.no_grad():
        assert np.allclose(logits, model(x).numpy(), atol=1e-6)
        flipped = model(x.flip(-1)).numpy()
    assert targets.tolist() == torch.cat([b[1] for b in data]).tolist()
    both, _ = predict_logits(model, data, CPU, views=[lambda t: t, lambda t: t.flip(-1)])
    assert np.allclose(both, (logits + flipped) / 2, atol=1e-6)


def test_inference_copies_to_the_host_every_few_batches_and_keeps_every_row_in_order(monkeypatch):
    """Logits (and targets) stay on the device for SYNC_EVERY batches: one wait for a GPU per that many, not per
    batch. Every row still comes back, in order, for each model."""
    copies = []
    to_host = steps._to_host

    def counted(pending, outs):
        copies.append(len(pending[-1]))  # batches waiting on the device
        to_host(pending, outs)

    monkeypatch.setattr(steps, "_to_host", counted)
    models = [Tiny().eval(), Tiny().eval()]
    data = _batches(2 * (2 * SYNC_EVERY + 3), batch=2)  # two full rounds and 3 batches more
    logits, targets = predict_logits_of(models, data, CPU)
    assert copies == [SYNC_EVERY, SYNC_EVERY, 3]
    x = torch.cat([b[0] for b in data])
    with torch.no_grad():
        for model, out in zip(models, logits):
            assert np.allclose(out, model(x).numpy(), atol=1e-6)
    assert targets.tolist() == torch.cat([b[1] for b in data]).tolist()


class RunsOutOfMemory(Tiny):
    """Tiny, but a batch of more than ``fits`` images raises CUDA's out-of-memory error, as a GPU would."""

    def __init__(self, fits: int) -> None:
        super().__init__()
        self.fits, self.sizes = fits, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(x))
        if len(x) > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().forward(x)


def test_a_batch_that_runs_out_of_gpu_memory_is_run_in_parts_with_the_same_logits():
    """Inference went on halving until a part fit, kept that size for the rest of the pass, said so at each halving,
    and gave every row its logits in order (before, the error ended validation, and with it the run)."""
    torch.manual_seed(0)
    model, reference = RunsOutOfMemory(fits=3), Tiny()
    reference.load_state_dict(model.state_dict())
    data = _batches(40, batch=8)
    splits = []
    logits, targets = predict_logits(
        model, data, CPU, views=[lambda t: t, lambda t: t.flip(-1)], on_split=lambda *a: splits.append(a)
    )
    expected, _ = predict_logits(reference, data, CPU, views=[lambda t: t, lambda t: t.flip(-1)])
    np.testing.assert_allclose(logits, expected, atol=1e-6)
    assert targets.tolist() == torch.cat([b[1] for b in data]).tolist()
    assert splits == [(8, 4), (8, 2)]  # halved twice, then kept
    assert model.sizes[:3] == [8, 4, 2] and set(model.sizes[3:]) == {2}
    with pytest.raises(torch.cuda.OutOfMemoryError):  # not even one image fits: the error stands
        predict_logits(RunsOutOfMemory(fits=0), data, CPU)


@pytest.mark.cuda
def test_inference_on_the_gpu_waits_for_it_every_few_batches_not_every_batch():
    gpu = Runtime(device=torch.device("cuda"))
    model = Tiny().cuda().eval()
    batches = 2 * SYNC_EVERY + 3
    data = [(x.pin_memory(), y.pin_memory().cuda(non_blocking=True)) for x, y in _batches(4 * batches)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")  # a warning for each operation that waits for the GPU
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            logits, _ = predict_logits_of([model], data, gpu)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    waits = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    assert len(logits[0]) == 4 * batches
    assert 0 < len(waits) <= 2 * 3, waits  # logits and targets, at 3 copies; one per batch made 2 * 35


class OnTheGpu(torch.Tensor):
    """A tensor that, like a CUDA one, becomes numpy only after ``.cpu()`` (the loader moves targets to the GPU)."""

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() first")

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor)


def test_predict_brings_targets_on_the_gpu_back_to_the_host():
    """Every validation, eval and predict on CUDA crashed here: the targets were concatenated on the GPU."""
    data = [(x, y.as_subclass(OnTheGpu)) for x, y in _batches(10, batch=3)]
    with pytest.raises(TypeError, match="cuda"):
        torch.cat([y for _, y in data]).numpy()  # the stand-in behaves as a CUDA tensor does
    _, targets = predict_logits(Tiny().eval(), data, CPU)
    assert targets.tolist() == torch.cat([y.cpu() for _, y in data]).tolist()


def test_early_stopping_tracks_the_best_and_never_picks_a_non_finite_score():
    stop = EarlyStopping(mode="max", patience=2)
    assert stop.update(1, 0.5) and not stop.update(2, float("nan")) and stop.best_epoch == 1
    assert not stop.should_stop and not stop.update(3, 0.4) and stop.should_stop
    low = EarlyStopping(mode="min")
    assert low.update(1, 2.0) and low.update(2, 1.0) and not low.update(3, 1.5) and not low.should_stop
    resumed = EarlyStopping(mode="min")
    resumed.load_state(low.state())
    assert (resumed.best_score, resumed.best_epoch, resumed.bad_epochs) == (1.0, 2, 1)


def test_reading_the_loss_every_few_steps_gives_the_same_epoch():
    """On a GPU the loss is read back every SYNC_EVERY steps, not every step; the numbers do not change."""
    data = _batches(32)
    stats = []
    for every in (1, 3):
        torch.manual_seed(0)
        model = Tiny()
        stats.append(train_one_epoch(_parts(model), data, CPU, 0, sync_every=every))
        stats[-1].weights = model.head.weight.detach().clone()
    assert stats[0].loss == pytest.approx(stats[1].loss, rel=1e-6)
    assert torch.equal(stats[0].weights, stats[1].weights)


class NanFromStep(torch.nn.Module):
    """Cross-entropy, NaN from the ``first`` step on."""

    def __init__(self, first: int) -> None:
        super().__init__()
        self.first, self.calls = first, 0

    def forward(self, logits, target):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(logits, target)
        return loss * float("nan") if self.calls >= self.first else loss


def test_a_nan_loss_read_every_few_steps_stops_within_them():
    parts = _parts(Tiny())
    parts.criterion = NanFromStep(3)
    with pytest.raises(NonFiniteLoss, match="loss became nan by step 4 of the epoch"):
        train_one_epoch(parts, _batches(32), CPU, 0, sync_every=4)


def test_a_step_can_read_the_exact_loss_between_reads():
    """On a GPU a step's loss is as of the last read (steps ago); ``exact`` reads it now, as a checkpoint needs."""
    seen: dict[int, list] = {1: [], 4: []}
    for every in (1, 4):
        torch.manual_seed(0)

        def look(step, every=every):
            if step.step == 3:  # not yet read with reads every 4
                seen[every] = [step.loss, step.images, *step.exact()]

        train_one_epoch(_parts(Tiny()), _batches(32), CPU, 0, on_step=look, sync_every=every)
    lagging, exact = seen[4], seen[1]
    assert lagging[1] == 0 and lagging[3] == exact[1] == 12
    assert lagging[2] == pytest.approx(exact[0], rel=1e-6)


def test_reading_the_exact_loss_after_a_nan_raises_instead_of_saving():
    parts = _parts(Tiny())
    parts.criterion = NanFromStep(2)
    with pytest.raises(NonFiniteLoss, match="by step 3"):
        train_one_epoch(parts, _batches(32), CPU, 0, on_step=lambda s: s.step == 3 and s.exact(), sync_every=8)
