"""Distributed training with torchrun (gloo on CPU): one run folder written by rank 0, the single-process sample
order split exactly across ranks, validation gathered row by row, resume after a rank died, two "nodes",
artkit's own launcher, k-fold fan-out, and the set-ups that must fail clearly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from artkit.data.sampler import EpochSampler, sample_weights
from artkit.engine.distributed import Dist, RankBatches

from helpers import TINY, make_dacon

SRC = Path(__file__).resolve().parents[2] / "src"
TINY_ARGS = [*TINY, "--batch-size", "4", "--device", "cpu"]  # later flags win: batch 4 per process
DRIVER = r"""
import os, sys
sys.path.insert(0, {src!r})
from artkit.data import dataset

real = dataset.ImageTable.__getitem__
log = open(os.path.join({record!r}, "keys_rank" + os.environ.get("RANK", "0") + ".txt"), "a")


def getitem(self, key):
    if isinstance(key, tuple):  # training samples come as (index, augmentation seed)
        log.write(f"{{key[0]}} {{key[1]}}\n")
        log.flush()
    return real(self, key)


dataset.ImageTable.__getitem__ = getitem
if {die!r}:
    import artkit.engine.steps as loop
    real_update, count = loop._update, []

    def _update(parts, num):
        count.append(1)
        if os.environ.get("RANK") == "1" and num >= {die!r}:
            os._exit(3)  # this rank dies mid-epoch
        return real_update(parts, num)

    loop._update = _update
from artkit.cli import main

sys.argv = ["artkit", *{args!r}]
main()
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}


def torchrun(tmp_path: Path, args: list[str], nproc: int = 2, die: int = 0, extra: list[str] | None = None):
    record = tmp_path / "record"
    record.mkdir(exist_ok=True)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(src=str(SRC), record=str(record), args=args, die=die), encoding="utf-8")
    launch = extra or ["--standalone", f"--nproc_per_node={nproc}"]
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *launch, str(driver)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
    )


def single_process_keys(run: Path, seed: int, sampler: str) -> Counter:
    split = pd.read_csv(run / "split.csv", dtype=str, keep_default_na=False)
    train = split[split["split"] == "train"]
    index = {c: i for i, c in enumerate(sorted(set(split["label"])))}
    weights = sample_weights(train["label"].map(index).to_numpy(), sampler)
    order, seeds = EpochSampler(len(train), seed, weights=weights).epoch_order()
    return Counter(zip(order.tolist(), seeds.tolist()))


def recorded_keys(tmp_path: Path) -> tuple[Counter, list[Counter]]:
    per_rank = []
    for path in sorted((tmp_path / "record").glob("keys_rank*.txt")):
        per_rank.append(Counter(tuple(map(int, line.split())) for line in path.read_text().splitlines()))
    return sum(per_rank, Counter()), per_rank


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("sampler", ["none", "balanced", "sqrt"])
def test_rank_batches_split_the_single_process_order_exactly(world: int, sampler: str):
    labels = np.array([0] * 11 + [1] * 5 + [2] * 3)
    single = EpochSampler(len(labels), 7, weights=sample_weights(labels, sampler))
    single.set_epoch(4)
    expected = Counter(zip(*(a.tolist() for a in single.epoch_order())))
    ranks = []
    for r in range(world):
        batches = RankBatches(
            EpochSampler(len(labels), 7, weights=sample_weights(labels, sampler)),
            Dist(rank=r, world=world),
            batch_size=4,
        )
        batches.set_epoch(4)
        ranks.append(list(batches))
    assert len({len(b) for b in ranks}) == 1  # every rank takes the same number of steps
    assert sum((Counter(k for b in batches for k in b) for batches in ranks), Counter()) == expected


@pytest.mark.slow
def test_torchrun_two_processes_one_run(tmp_path: Path):
    # one weighted sampler end to end; every sampler's split across ranks is checked in-process above
    sampler = "sqrt"
    data = make_dacon(tmp_path / "data")
    out = tmp_path / "runs"
    done = torchrun(
        tmp_path,
        ["train", str(data), *TINY_ARGS, "--epochs", "1", "--sampler", sampler, "--seed", "5", "--out", str(out)],
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [p.name for p in out.iterdir()] == ["train"]  # one run folder
    assert done.stdout.count("done: best epoch") == 1 and "2 processes (DistributedDataParallel)" in done.stdout
    run = out / "train"
    union, per_rank = recorded_keys(tmp_path)
    assert len(per_rank) == 2 and all(per_rank)
    assert union == single_process_keys(run, 5, sampler)  # exactly what one process would have drawn
    split = pd.read_csv(run / "split.csv", dtype=str)
    with np.load(run / "val_predictions.npz") as z:  # gathered: every validation row once, in split order
        assert z["ids"].tolist() == split.loc[split["split"] == "val", "id"].tolist()
    for name in ("best.pt", "last.pt"):
        assert torch.load(run / name, weights_only=True)["classes"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_one_machine(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    port = _free_port()
    nodes = []
    for rank in (0, 1):
        folder = tmp_path / f"node{rank}"
        folder.mkdir()
        driver = folder / "driver.py"
        (folder / "record").mkdir()
        args = ["train", str(data), *TINY_ARGS, "--epochs", "1", "--out", str(tmp_path / "runs")]
        driver.write_text(
            DRIVER.format(src=str(SRC), record=str(folder / "record"), args=args, die=0), encoding="utf-8"
        )
        launch = [
            "--nnodes=2",
            f"--node_rank={rank}",
            "--nproc_per_node=1",
            "--rdzv_backend=c10d",
            f"--rdzv_endpoint=127.0.0.1:{port}",
            "--rdzv_id=artkit-test",
        ]
        nodes.append(
            subprocess.Popen(
                [sys.executable, "-m", "torch.distributed.run", *launch, str(driver)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env(),
            )
        )
    outputs = [n.communicate(timeout=300)[0] for n in nodes]
    assert all(n.returncode == 0 for n in nodes), "\n".join(o[-2000:] for o in outputs)
    assert sum("done: best epoch" in o for o in outputs) == 1
    assert (tmp_path / "runs" / "train" / "best.pt").is_file()


@pytest.mark.slow
def test_artkit_launches_cpu_processes_and_fans_folds_out(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    base = [sys.executable, "-m", "artkit", "train", str(data), *TINY_ARGS[:-2], "--epochs", "1"]
    ddp = subprocess.run(  # with a frozen backbone at first: DDP raised at the second step when parameters froze
        [*base, "--devices", "cpu:2", "--epochs", "2", "--freeze-epochs", "1", "--out", str(tmp_path / "ddp")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
    )
    assert ddp.returncode == 0, ddp.stdout[-2000:] + ddp.stderr[-2000:]
    flat = " ".join(ddp.stdout.split())
    assert "torchrun --standalone --nproc_per_node=2 -m artkit train" in flat and "2 processes" in flat
    assert (tmp_path / "ddp" / "train" / "best.pt").is_file()
    folds = subprocess.run(
        [*base, "--folds", "3", "--devices", "cpu:2", "--out", str(tmp_path / "kf")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
    )
    assert folds.returncode == 0, folds.stdout[-2000:] + folds.stderr[-2000:]
    oof = pd.read_csv(tmp_path / "kf" / "kfold" / "oof.csv", dtype={"id": str})
    assert sorted(oof["id"]) == sorted(pd.read_csv(data / "train.csv", dtype=str)["id"])  # every row once
    assert "CV macro-F1" in folds.stdout and all(
        (tmp_path / "kf" / "kfold" / f"fold{i}" / "best.pt").is_file() for i in range(3)
    )


@pytest.mark.slow
def test_a_rank_that_dies_stops_the_job_and_leaves_nothing_corrupt(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    out = tmp_path / "runs"
    died = torchrun(tmp_path, ["train", str(data), *TINY_ARGS, "--epochs", "3", "--out", str(out)], die=4)
    assert died.returncode != 0
    run = out / "train"
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1  # the finished epoch is intact
    assert not list(run.glob(".*.tmp"))
    resumed = torchrun(tmp_path, ["train", "--resume", str(run)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1" in resumed.stdout
    assert len(pd.read_csv(run / "results.csv")) == 3


@pytest.mark.slow
def test_bad_setups_are_one_message(tmp_path: Path):
    from helpers import artkit

    data = make_dacon(tmp_path / "data")
    r = artkit("train", data, *TINY_ARGS[:-2], "--devices", "7", "--out", tmp_path / "r", ok=False)
    assert r.exit_code == 2 and "--devices names GPU 7" in r.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        os.environ["MASTER_PORT"] = str(busy.getsockname()[1])
        try:
            r = artkit("train", data, *TINY_ARGS[:-2], "--devices", "cpu:2", "--out", tmp_path / "r", ok=False)
        finally:
            del os.environ["MASTER_PORT"]
    assert r.exit_code == 2 and "is in use on this machine" in r.output
    nccl = torchrun(tmp_path, ["train", str(data), *TINY_ARGS, "--dist-backend", "nccl", "--out", str(tmp_path / "n")])
    assert nccl.returncode != 0 and "--dist-backend nccl needs CUDA GPUs" in nccl.stderr


@pytest.mark.parametrize(("backend", "devices"), [("nccl", [3]), ("gloo", [])])
def test_each_nccl_rank_takes_its_own_gpu_before_joining(monkeypatch: pytest.MonkeyPatch, backend: str, devices):
    """The first collectives (the run folder's name, the split) ran before the model's device was set: every
    rank's NCCL calls went to cuda:0 ('Duplicate GPU detected', or a hang)."""
    import torch.distributed as td

    from artkit.engine import distributed

    calls = []
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(td, "init_process_group", lambda **kwargs: calls.append(("join", kwargs["backend"])))
    distributed.init(Dist(rank=1, world=4, local_rank=3), backend)
    assert calls == [("set_device", d) for d in devices] + [("join", backend)]


def test_sync_bn_keeps_the_activations_timms_norms_carry():
    """torch's converter dropped them: the run trained another network than its checkpoint is loaded into."""
    import copy

    from artkit.engine.session import to_sync_batchnorm
    from artkit.models.factory import create_model

    model = create_model("test_efficientnet", num_classes=3, pretrained=False).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        converted = to_sync_batchnorm(copy.deepcopy(model)).eval()
        assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in converted.modules())
        assert torch.allclose(converted(x), expected, atol=1e-5)
