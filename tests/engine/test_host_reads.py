"""On a GPU every read of a tensor's value on the host waits for the device. A CPU cannot show the wait, but it
can count the reads: a training epoch with every option that adds work to the step reads only its loss, once
every few steps."""

from __future__ import annotations

import functools
import traceback
from pathlib import Path

import torch

from artkit.engine import steps, trainer

from helpers import TINY, artkit

READS = ("item", "cpu", "numpy", "tolist", "__bool__", "__float__", "__int__")  # each waits for a GPU


def test_a_training_epoch_reads_tensors_on_the_host_only_when_it_reads_the_loss(
    dacon: Path, tmp_path: Path, monkeypatch
):
    reads: list[tuple[str, str]] = []
    for name in READS:

        def counted(self, *args, _original=getattr(torch.Tensor, name), _name=name, **kwargs):
            stack = traceback.extract_stack()[:-1]
            # within the step loop, but not the DataLoader's own seed (a CPU tensor wherever the model runs)
            if any(f.name == "train_one_epoch" for f in stack) and "torch/utils/data" not in stack[-1].filename:
                reads.append((_name, stack[-1].name))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    # as on a GPU (a CPU reads every step, which costs nothing there), with fewer steps between reads
    monkeypatch.setattr(trainer, "train_one_epoch", functools.partial(steps.train_one_epoch, sync_every=3))
    options = ["--mixup", "0.2", "--cutmix", "1.0", "--ema", "--clip-grad", "1.0", "--grad-accum", "2"]
    options += ["--loss", "focal", "--class-weights", "inverse", "--sampler", "balanced", "--batch-size", "2"]
    artkit("train", "--data", dacon, *TINY, "--epochs", "1", *options, "--out", tmp_path)
    assert reads, "the loss was never read"
    assert {caller for _, caller in reads} == {"read"}, reads  # LossTally.read, nothing else in the step
    assert len(reads) <= 4, reads  # 8-10 steps: a read every 3 steps and at the end
