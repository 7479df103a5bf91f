"""The schema of what a checkpoint or weights file says besides its tensors: types, shapes and ranges, checked
before anything is built from them, so a damaged or hostile file gets one clear message (never a traceback, a
RecursionError, or a submission made with a nonsensical normalisation)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from artkit.errors import ArtkitError

MAX_IMG_SIZE = 4096  # beyond this a single image would not fit a GPU's memory for any timm model
MIN_IMG_SIZE = 8
MAX_CLASSES = 100_000
MAX_TENSORS = 200_000
MAX_NAME = 300
MEAN_RANGE = (-1.0, 2.0)  # normalisations are given for pixels in 0..1
STD_RANGE = (1e-3, 10.0)
DAMAGED = "the file was edited or damaged; use the run's best.pt or last.pt, or save the weights again"


def _bad(path: str | Path, what: str) -> ArtkitError:
    return ArtkitError(f"{path} has {what}", DAMAGED)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_name(value: Any, path: str | Path, key: str = "model") -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or not value.isprintable():
        raise _bad(path, f"an invalid '{key}' entry (a model name must be text, got {type(value).__name__})")
    return value


def check_img_size(value: Any, path: str | Path, key: str = "img_size") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_IMG_SIZE <= value <= MAX_IMG_SIZE:
        shown = value if isinstance(value, int | float) else type(value).__name__
        raise _bad(
            path, f"an invalid '{key}' ({shown}; a whole number of pixels from {MIN_IMG_SIZE} to {MAX_IMG_SIZE})"
        )
    return value


def check_normalisation(mean: Any, std: Any, path: str | Path) -> tuple[list[float], list[float]]:
    """Three finite numbers each, the mean within MEAN_RANGE and the std within STD_RANGE."""
    for key, values, (lo, hi) in (("mean", mean, MEAN_RANGE), ("std", std, STD_RANGE)):
        if not isinstance(values, list | tuple) or len(values) != 3 or not all(_is_number(v) for v in values):
            raise _bad(path, f"an invalid normalisation: '{key}' must be three numbers")
        if not all(lo <= v <= hi for v in values):
            raise _bad(path, f"an invalid normalisation: '{key}' {list(values)} is outside {lo}..{hi}")
    return [float(v) for v in mean], [float(v) for v in std]


def check_classes(value: Any, path: str | Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(c, str) and len(c) <= MAX_NAME for c in value):
        raise _bad(path, "an invalid class list (it must be a list of names)")
    if not 2 <= len(value) <= MAX_CLASSES or len(set(value)) != len(value):
        raise _bad(path, f"an invalid class list ({len(value)} entries, {len(set(value))} distinct)")
    return value


def check_state_dict(value: Any, path: str | Path, key: str = "state_dict") -> dict:
    """A flat mapping of names to real-valued tensors."""
    import torch

    if not isinstance(value, dict) or not 0 < len(value) <= MAX_TENSORS:
        raise _bad(path, f"an invalid '{key}' (a mapping of names to tensors)")
    for name, tensor in value.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise _bad(path, f"an invalid '{key}': {str(name)[:60]!r} is not a named tensor")
        if tensor.is_complex() or tensor.dtype in (torch.bool,) or tensor.is_sparse or tensor.is_quantized:
            raise _bad(path, f"an invalid '{key}': {name[:60]} is a {tensor.dtype} tensor, not real numbers")
    return value


def check_plain(value: Any, path: str | Path, key: str, depth: int = 6) -> dict:
    """A mapping of text keys to plain values (numbers, text, lists, mappings), nested at most ``depth`` deep."""
    if not isinstance(value, dict) or not _plain(value, depth):
        raise _bad(path, f"an invalid '{key}' entry (plain options and values expected)")
    return value


def _plain(value: Any, depth: int) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if depth <= 0:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth - 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return len(value) <= MAX_CLASSES and all(_plain(v, depth - 1) for v in value)
    return False


def check_pretrained_cfg(cfg: Any, path: str | Path) -> dict:
    """A weights file's input size, normalisation and the rest of timm's pretrained config."""
    if not isinstance(cfg, dict):
        raise _bad(path, "an invalid 'pretrained_cfg' (a mapping expected)")
    size = cfg.get("input_size")
    if size is not None:
        if not isinstance(size, list | tuple) or len(size) != 3:
            raise _bad(path, "an invalid 'input_size' (channels, height, width expected)")
        for side in size[1:]:
            check_img_size(side, path, "input_size")
    if "mean" in cfg or "std" in cfg:
        check_normalisation(cfg.get("mean"), cfg.get("std"), path)
    for key, kind in (("interpolation", str), ("hf_hub_id", str), ("tag", str)):
        if cfg.get(key) is not None and not isinstance(cfg[key], kind):
            raise _bad(path, f"an invalid '{key}' in 'pretrained_cfg'")
    crop = cfg.get("crop_pct")
    if crop is not None and not (_is_number(crop) and 0 < crop <= 2):
        raise _bad(path, "an invalid 'crop_pct' in 'pretrained_cfg'")
    classes = cfg.get("num_classes")
    if classes is not None and not (isinstance(classes, int) and not isinstance(classes, bool) and classes >= 0):
        raise _bad(path, "an invalid 'num_classes' in 'pretrained_cfg'")
    return cfg


def check_checkpoint(ckpt: dict[str, Any], path: str | Path) -> None:
    """Every entry of an artkit checkpoint that a command uses."""
    check_name(ckpt.get("model"), path)
    check_classes(ckpt.get("classes"), path)
    check_img_size(ckpt.get("img_size"), path)
    check_normalisation(ckpt.get("mean"), ckpt.get("std"), path)
    check_state_dict(ckpt.get("state_dict"), path)
    check_plain(ckpt.get("config", {}), path, "config")
    check_plain(ckpt.get("metrics", {}), path, "metrics")
    epoch = ckpt.get("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise _bad(path, "an invalid 'epoch' entry")
