"""Validation of an epoch: metrics over the validation split, gathered from every rank, and the predictions
kept beside best.pt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from artkit.engine.device import Runtime
from artkit.engine.distributed import SINGLE, Dist, gather_rows, shard_indices
from artkit.engine.steps import predict_logits, split_note
from artkit.metrics import summary_metrics
from artkit.models.fuse import fuse_conv_bn
from artkit.progress import Reporter
from artkit.writer import save_npz


@dataclass(kw_only=True)
class Validation:
    metrics: dict[str, float]  # val_loss, val_acc, val_macro_f1
    logits: np.ndarray
    targets: np.ndarray
    finite: bool  # False: NaN/inf logits or loss; such an epoch is never best


def validate(
    model: torch.nn.Module,
    loader,
    targets: np.ndarray,
    criterion,
    rt: Runtime,
    reporter: Reporter,
    dist: Dist = SINGLE,
    img_size: int | None = None,
) -> Validation:
    """Metrics of the validation split; each rank runs its share of the rows and every rank gets all logits.
    With ``img_size`` a copy of the model with its convolutions and batch norms fused runs them, as inference
    does (the same logits, faster)."""
    if img_size is not None:
        probe = torch.randn(2, 3, img_size, img_size, generator=torch.Generator().manual_seed(0))
        model = fuse_conv_bn(model, rt.images(probe))[0]
    logits, _ = predict_logits(
        model,
        loader,
        rt,
        on_step=lambda done, total: reporter.progress("validate", done, total),
        on_split=lambda batch, part: reporter.message(split_note("validation", batch, part)),
    )
    logits = gather_rows(shard_indices(len(targets), dist), logits, dist, len(targets))
    with torch.no_grad():
        loss = float(criterion(torch.from_numpy(logits).to(rt.device), torch.from_numpy(targets).to(rt.device)))
    finite = bool(np.isfinite(logits).all()) and np.isfinite(loss)
    m = summary_metrics(targets, logits.argmax(1))
    metrics = {"val_loss": loss, "val_acc": m["acc"], "val_macro_f1": m["macro_f1"]}
    return Validation(metrics=metrics, logits=logits, targets=targets, finite=finite)


def save_val_predictions(run_dir: Path, ids: list[str], classes: list[str], val: Validation) -> None:
    save_npz(
        run_dir / "val_predictions.npz",
        ids=np.array(ids, dtype=str),
        classes=np.array(classes, dtype=str),
        logits=val.logits,
        targets=val.targets.astype(np.int64),
    )
