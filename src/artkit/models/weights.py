"""Initialising a model from a local weights file: a state dict, an artkit checkpoint or safetensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from artkit.errors import ArtkitError
from artkit.io import load_torch


@dataclass(kw_only=True)
class WeightsReport:
    loaded: int
    skipped: list[str] = field(default_factory=list)  # present but a different shape (e.g. the classifier)
    missing: list[str] = field(default_factory=list)


def _extract_state_dict(obj) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "state_dict_ema"):
            if key in obj and isinstance(obj[key], dict):
                return _extract_state_dict(obj[key])
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in tensors.items()}
    raise ArtkitError(
        "no state dict (name → tensor mapping) found in the weights file",
        "save one with torch.save(model.state_dict(), FILE)",
    )


def load_weights(model: nn.Module, path: str | Path) -> WeightsReport:
    """Initialise ``model`` from a local weights file (state dict, artkit checkpoint or safetensors).

    Tensors whose shape differs (typically the classifier, when the class count differs) are left
    at their fresh initialisation and reported.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        if not path.is_file():
            raise ArtkitError(f"weights file not found: {path}")
        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error type, plus OSError and ValueError
            raise ArtkitError(
                f"{path} is not a readable .safetensors file ({str(exc).splitlines()[0][:160]})",
                "the file may be truncated or damaged; download or save it again",
            ) from None
    else:
        state = _extract_state_dict(load_torch(path))
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(k for k, v in state.items() if k in own and own[k].shape != v.shape)
    matched = len(usable) + len(skipped)
    if matched < 0.5 * len(own):
        raise ArtkitError(
            f"{path} does not fit this model: only {matched} of its {len(own)} tensors match by name",
            "check --model, or convert the file's names to timm's",
        )
    model.load_state_dict(usable, strict=False)
    missing = sorted(k for k in own if k not in usable and k not in skipped)
    return WeightsReport(loaded=len(usable), skipped=skipped, missing=missing)
