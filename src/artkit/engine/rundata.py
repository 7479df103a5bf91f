"""What a run trains and validates on: the split (new or the run's own), unreadable images left out, and the
data loaders (rebuilt when progressive resizing changes the training size)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artkit.data.dataset import ImageTable, data_loader
from artkit.data.decode_cache import DecodeCache, plan_decode_cache
from artkit.data.images import check_image_header, load_image
from artkit.data.layout import class_names, discover
from artkit.data.sampler import EpochSampler, sample_weights
from artkit.data.splits import classes_smaller_than, make_split
from artkit.data.transforms import create_transform
from artkit.data.transforms import decode_size as decode_size_for
from artkit.engine.config import TrainConfig
from artkit.engine.device import DeviceBatches, Runtime
from artkit.engine.distributed import SINGLE, Dist, RankBatches, shard_indices
from artkit.errors import ArtkitError, ImageLoadError
from artkit.models.factory import DataConfig
from artkit.options import save_config
from artkit.reader import read_csv_text
from artkit.writer import write_csv

CONFIG_HEADER = "artkit train options of this run"


@dataclass(kw_only=True)
class RunData:
    """The rows a run trains and validates on, as class indices."""

    classes: list[str]
    train_rows: pd.DataFrame
    val_rows: pd.DataFrame
    bad: dict[str, str]  # unreadable path -> reason (left out with --skip-bad)
    notes: list[str] = field(default_factory=list)  # what the user should know about the data

    def targets(self, rows: pd.DataFrame) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array(rows["label"].map(index), dtype=np.int64)

    @property
    def has_val(self) -> bool:
        return len(self.val_rows) > 0


def _decode_check(path: str) -> str | None:
    try:
        load_image(path, min_size=32)  # a reduced-size decode still reads the whole file
        return None
    except ImageLoadError as exc:
        return exc.message


def find_unreadable(paths: list[str], workers: int, decode: bool = False) -> dict[str, str]:
    """Path -> reason for every image that cannot be read. Headers only by default (missing, empty,
    not an image); ``decode`` also finds truncated files, at the cost of decoding every image."""
    check = _decode_check if decode else check_image_header
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # Pillow decodes without the GIL
        reasons = list(pool.map(check, paths))
    return {p: r for p, r in zip(paths, reasons) if r is not None}


def _fold_notes(table: pd.DataFrame, folds: int | None) -> list[str]:
    small = classes_smaller_than(table["label"], folds) if folds else {}
    if not small:
        return []
    listed = ", ".join(f"{k} ({v})" for k, v in list(small.items())[:5]) + (" ..." if len(small) > 5 else "")
    return [f"{len(small)} class(es) have fewer rows than --folds {folds}, so some folds train without them: {listed}"]


def _new_split(cfg: TrainConfig, run_dir: Path, write: bool = True) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Find the training table, split it, and (``write``: rank 0) record split.csv and config.yaml in the run
    folder; returns the split, the classes and notes about the data. Every rank computes the same split."""
    source = discover(cfg.data, cfg.train_csv, None, cfg.columns)
    table = source.require_train()
    if table["id"].duplicated().any():
        dups = table.loc[table["id"].duplicated(), "id"].unique()[:5]
        raise ArtkitError(
            f"duplicate ids in the training data: {', '.join(dups)}",
            "run `artkit clean` and train on its train_clean.csv (--train-csv)",
        )
    if cfg.full:
        split = table[["id", "path", "label"]].copy()
        split["split"] = "train"
    else:
        split = make_split(table, cfg.seed, cfg.val_fraction, cfg.folds, cfg.fold)
    if write:
        write_csv(run_dir / "split.csv", split)
        save_config(cfg, run_dir / "config.yaml", header=CONFIG_HEADER)
    notes = [n for n in source.notes if "test" not in n] + _fold_notes(table, cfg.folds)
    return split, class_names(table["label"]), notes


def _saved_split(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "split.csv"
    if not path.exists():
        raise ArtkitError(f"{path} is missing, so the run's split cannot be restored", "start a new run")
    return read_csv_text(path)


def prepare_data(cfg: TrainConfig, run_dir: Path, last: dict | None, workers: int, write: bool = True) -> RunData:
    """The split (new, or the run's own when resuming from ``last``), without unreadable images."""
    if last is not None:
        split, classes, notes = _saved_split(run_dir), list(last["classes"]), []
    else:
        split, classes, notes = _new_split(cfg, run_dir, write)
    if len(classes) < 2:
        raise ArtkitError(f"need at least two classes to train, found {len(classes)}")
    # with --skip-bad, decode everything up front so truncated files are left out and counted too
    bad = find_unreadable(split["path"].tolist(), workers, decode=cfg.skip_bad)
    if bad and not cfg.skip_bad:
        first = "; ".join(f"{p} ({r})" for p, r in list(bad.items())[:3])
        raise ArtkitError(
            f"{len(bad)} training image(s) cannot be read: {first}",
            "pass --skip-bad to train without them, or run `artkit clean`",
        )
    usable = split[~split["path"].isin(bad)]
    return RunData(
        classes=classes,
        train_rows=usable[usable["split"] == "train"],
        val_rows=usable[usable["split"] == "val"],
        bad=bad,
        notes=notes,
    )


@dataclass(kw_only=True)
class Loaders:
    train: Any
    val: Any
    sampler: EpochSampler | RankBatches
    train_size: int
    val_size: int
    img_size: int  # the training loader's image size (progressive resizing changes it)
    cache: DecodeCache | None = None  # decoded images, shared by training and validation
    cache_note: str | None = None  # for the run header


def _loader(dataset, dcfg: DataConfig, workers: int, rt: Runtime, **batching) -> DeviceBatches:
    """Batches of ``dataset`` on the run's device, normalised there."""
    return DeviceBatches(data_loader(dataset, workers, rt.pin_memory, **batching), rt, dcfg.mean, dcfg.std)


def decode_size(cfg: TrainConfig, dcfg: DataConfig) -> int:
    """The shorter side images are decoded to (at least), for every training size and for validation."""
    return decode_size_for(cfg.aug, dcfg.img_size, "train")


def _dataset(
    cfg: TrainConfig,
    data: RunData,
    rows: pd.DataFrame,
    dcfg: DataConfig,
    size: int,
    stage: str,
    cache: DecodeCache | None,
):
    transform = create_transform(cfg.aug, size, stage)
    hint = "fix or replace the file (`artkit clean` lists them all), or train with --skip-bad to leave it out"
    return ImageTable(
        rows["path"].tolist(), data.targets(rows), transform, decode_size(cfg, dcfg), cfg.skip_bad, hint, cache
    )


def train_loader(
    cfg: TrainConfig,
    data: RunData,
    dcfg: DataConfig,
    size: int,
    workers: int,
    rt: Runtime,
    sampler: EpochSampler | RankBatches,
    cache: DecodeCache | None = None,
):
    dataset = _dataset(cfg, data, data.train_rows, dcfg, size, "train", cache)
    if isinstance(sampler, RankBatches):  # one rank of several: its share of the single-process order
        return _loader(dataset, dcfg, workers, rt, batch_sampler=sampler)
    drop_last = (cfg.mixup > 0 or cfg.cutmix > 0) and len(dataset) > cfg.batch_size  # timm's Mixup needs even batches
    return _loader(dataset, dcfg, workers, rt, batch_size=cfg.batch_size, sampler=sampler, drop_last=drop_last)


def build_loaders(
    cfg: TrainConfig, data: RunData, dcfg: DataConfig, workers: int, rt: Runtime, dist: Dist = SINGLE
) -> Loaders:
    size = cfg.img_size_start or dcfg.img_size
    sampler = EpochSampler(
        len(data.train_rows), cfg.seed, weights=sample_weights(data.targets(data.train_rows), cfg.sampler)
    )
    if dist.active:
        sampler = RankBatches(sampler, dist, cfg.batch_size, even=cfg.mixup > 0 or cfg.cutmix > 0)
    paths = [*data.train_rows["path"], *data.val_rows["path"]]
    plan = plan_decode_cache(cfg.cache, paths, decode_size(cfg, dcfg))
    val = None
    if data.has_val:  # each rank validates every world-th row; the logits are gathered afterwards
        rows = shard_indices(len(data.val_rows), dist)
        val_set = _dataset(cfg, data, data.val_rows.iloc[rows], dcfg, dcfg.img_size, "val", plan.cache)
        val = _loader(val_set, dcfg, workers, rt, batch_size=cfg.batch_size * 2)
    return Loaders(
        train=train_loader(cfg, data, dcfg, size, workers, rt, sampler, plan.cache),
        val=val,
        sampler=sampler,
        train_size=len(data.train_rows),
        val_size=len(data.val_rows),
        img_size=size,
        cache=plan.cache,
        cache_note=plan.note,
    )


def progressive_size(start: int, final: int, epoch: int, epochs: int) -> int:
    """The training image size of ``epoch`` (0-based): from ``start`` to ``final`` linearly, in steps of 8 px."""
    if epochs <= 1:
        return final
    size = start + (final - start) * epoch / (epochs - 1)
    return min(final, max(8, int(round(size / 8)) * 8))
