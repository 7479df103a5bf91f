"""Checkpoints: tensors plus plain metadata, loadable with ``torch.load(weights_only=True)``; and the
:class:`CheckpointSaver` that keeps a run's ``best.pt`` and ``last.pt``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from artkit import __version__
from artkit.errors import ArtkitError
from artkit.models.meta import DAMAGED, check_checkpoint
from artkit.reader import load_torch
from artkit.writer import save_torch

FORMAT = "artkit-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class ModelMeta:
    """What a checkpoint says about its model besides the tensors."""

    model_name: str
    classes: list[str]
    img_size: int
    mean: list[float]
    std: list[float]
    config: dict[str, Any]


def make_checkpoint(
    meta: ModelMeta,
    state_dict: dict[str, torch.Tensor],
    metrics: dict[str, float],
    epoch: int,
    train_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "artkit_version": __version__,
        "model": meta.model_name,
        "classes": list(meta.classes),
        "img_size": int(meta.img_size),
        "mean": [float(v) for v in meta.mean],
        "std": [float(v) for v in meta.std],
        "config": meta.config,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "epoch": int(epoch),
        "state_dict": on_cpu(state_dict),
    }
    if train_state is not None:
        ckpt["train_state"] = on_cpu(train_state)  # the optimiser's moments and EMA's model are on the GPU
    return ckpt


def on_cpu(value: Any) -> Any:
    """``value`` with every tensor in it (through dicts, lists and tuples) detached and on the CPU, so that the
    checkpoint loads with ``torch.load(weights_only=True)`` on a machine without the GPU it was saved on."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(on_cpu(v) for v in value)
    return value


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate an artkit checkpoint."""
    ckpt = load_torch(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ArtkitError(
            f"{path} is not an artkit checkpoint",
            "to start training from a plain state dict use `artkit train --weights FILE`",
        )
    version = ckpt.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ArtkitError(f"{path} has an invalid 'format_version' entry", DAMAGED)
    if version > FORMAT_VERSION:
        raise ArtkitError(f"{path} was written by a newer artkit ({ckpt.get('artkit_version')})", "upgrade artkit")
    check_checkpoint(ckpt, path)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> torch.nn.Module:
    """Rebuild the timm model described by ``ckpt`` and load its weights (no download)."""
    from artkit.models.factory import create_model

    model = create_model(ckpt["model"], num_classes=len(ckpt["classes"]), pretrained=False)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise ArtkitError(
            f"the weights in {path} do not fit a {ckpt['model']} with {len(ckpt['classes'])} classes "
            f"({str(exc).splitlines()[0][:160]})",
            "the checkpoint was edited or damaged; use the run's best.pt or last.pt as written",
        ) from None
    return model.eval()


class CheckpointSaver:
    """A run's ``best.pt`` (the best epoch by the monitored metric) and ``last.pt`` (the latest epoch, with
    the state to resume from), both written atomically, like timm's ``CheckpointSaver``."""

    def __init__(self, run_dir: Path, meta: ModelMeta) -> None:
        self.meta = meta
        self.best_path = run_dir / "best.pt"
        self.last_path = run_dir / "last.pt"

    def save_best(self, weights: dict[str, torch.Tensor], metrics: dict[str, float], epoch: int) -> None:
        save_torch(make_checkpoint(self.meta, weights, metrics, epoch), self.best_path)

    def save_last(
        self, weights: dict[str, torch.Tensor], metrics: dict[str, float], epoch: int, train_state: dict[str, Any]
    ) -> None:
        save_torch(make_checkpoint(self.meta, weights, metrics, epoch, train_state), self.last_path)
