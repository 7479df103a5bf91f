"""Checkpoints: tensors plus plain metadata, loadable with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from artkit import __version__
from artkit.errors import ArtkitError

FORMAT = "artkit-checkpoint"
FORMAT_VERSION = 1


def make_checkpoint(model_name: str, classes: list[str], img_size: int, mean: list[float], std: list[float],
                    state_dict: dict[str, torch.Tensor], config: dict[str, Any], metrics: dict[str, float],
                    epoch: int, train_state: dict[str, Any] | None = None) -> dict[str, Any]:
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "artkit_version": __version__,
        "model": model_name,
        "classes": list(classes),
        "img_size": int(img_size),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "config": config,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "epoch": int(epoch),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    }
    if train_state is not None:
        ckpt["train_state"] = train_state
    return ckpt


def save_atomic(obj: Any, path: str | Path) -> None:
    """Write to a temporary file beside ``path`` and rename, so a crash never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_weights_only(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` with clear messages for the failures a user can cause."""
    path = Path(path)
    if not path.is_file():
        raise ArtkitError(f"file not found: {path}", "check the path (runs/<name>/best.pt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ArtkitError(f"{path} needs pickled Python objects to load, which artkit refuses for safety ({str(exc).splitlines()[0]})",
                          "re-save it as a plain state dict: torch.save(model.state_dict(), 'weights.pt')") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ArtkitError(f"cannot read {path}: {str(exc).splitlines()[0]}", "the file may be truncated or not a PyTorch file") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate an artkit checkpoint."""
    ckpt = load_weights_only(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ArtkitError(f"{path} is not an artkit checkpoint",
                          "to start training from a plain state dict use `artkit train --weights FILE`")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise ArtkitError(f"{path} was written by a newer artkit ({ckpt.get('artkit_version')})", "upgrade artkit")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> torch.nn.Module:
    """Rebuild the timm model described by ``ckpt`` and load its weights (no download)."""
    from artkit.models import create_model

    model = create_model(ckpt["model"], num_classes=len(ckpt["classes"]), pretrained=False)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
