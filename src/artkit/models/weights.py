"""Initialising a model from a local weights file: a state dict, an artkit checkpoint or safetensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from artkit.errors import ArtkitError
from artkit.models.meta import check_checkpoint, check_name, check_plain, check_pretrained_cfg, check_state_dict
from artkit.reader import load_torch


@dataclass(kw_only=True)
class WeightsReport:
    loaded: int
    skipped: list[str] = field(default_factory=list)  # present but a different shape (e.g. the classifier)
    missing: list[str] = field(default_factory=list)

    def missing_layers(self, most: int = 6) -> list[str]:
        """The modules (first two name parts, e.g. ``layer4.1``) of the tensors the file did not have."""
        layers = list(dict.fromkeys(".".join(name.split(".")[:2]) for name in self.missing))
        return layers[:most] + ([f"... {len(layers) - most} more"] if len(layers) > most else [])


STATE_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema")
MAX_NESTING = 4  # {"state_dict": {"model": {...}}} at most; a deeper file is not a weights file


def _extract_state_dict(obj, path: str | Path = "the weights file") -> dict[str, torch.Tensor]:
    """The name → tensor mapping of a state dict, an artkit file or a training checkpoint that wraps one."""
    for _ in range(MAX_NESTING + 1):
        inner = next((obj[k] for k in STATE_KEYS if isinstance(obj, dict) and isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors:
            check_state_dict(tensors, path)
            return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in tensors.items()}
    raise ArtkitError(
        f"no state dict (name → tensor mapping) found in {path}", "save one with torch.save(model.state_dict(), FILE)"
    )


def load_weights(model: nn.Module, path: str | Path) -> WeightsReport:
    """Initialise ``model`` from a local weights file (state dict, artkit checkpoint or safetensors).

    Tensors whose shape differs (typically the classifier, when the class count differs) are left
    at their fresh initialisation and reported.
    """
    path = Path(path)
    obj = _read(path)
    state = _extract_state_dict(obj, path)
    check_weights_meta(obj, path)
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
    cfg = obj.get("pretrained_cfg") if isinstance(obj, dict) and obj.get("format") == WEIGHTS_FORMAT else None
    if cfg and hasattr(model, "pretrained_cfg"):  # the weights' own input size and normalisation
        model.pretrained_cfg = {
            **model.pretrained_cfg,
            **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()},
        }
    missing = sorted(k for k in own if k not in usable and k not in skipped)
    return WeightsReport(loaded=len(usable), skipped=skipped, missing=missing)


def _read(path: Path):
    """A torch file's object (weights_only) or a safetensors file's state dict."""
    if path.suffix != ".safetensors":
        return load_torch(path)
    from safetensors.torch import load_file

    if not path.is_file():
        raise ArtkitError(f"weights file not found: {path}")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type, plus OSError and ValueError
        raise ArtkitError(
            f"{path} is not a readable .safetensors file ({str(exc).splitlines()[0][:160]})",
            "the file may be truncated or damaged; download or save it again",
        ) from None


# --------------------------------------------------------------------------- weights files you can carry

WEIGHTS_FORMAT = "artkit-weights"
RANDOM_SOURCE = "random init (artkit weights save --no-pretrained)"
CFG_KEYS = ("input_size", "mean", "std", "interpolation", "crop_pct", "num_classes", "hf_hub_id", "tag")


@dataclass(kw_only=True)
class WeightsInfo:
    """What a weights file holds (``artkit weights show``)."""

    path: Path
    kind: str  # "artkit weights", "artkit checkpoint" or "state dict"
    model: str | None
    tensors: int
    parameters: int
    classes: int | None
    input_size: int | None
    mean: list[float] | None
    std: list[float] | None
    source: str | None


def weights_file(name: str, model: nn.Module, source: str) -> dict:
    """A carryable weights file: the state dict, the timm model name, and the pretrained config (input size and
    normalisation) that artkit needs to use the weights right; loads with ``torch.load(weights_only=True)``."""
    from artkit import __version__

    cfg = getattr(model, "pretrained_cfg", {}) or {}
    plain = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items() if k in CFG_KEYS and v is not None}
    return {
        "format": WEIGHTS_FORMAT,
        "format_version": 1,
        "artkit_version": __version__,
        "model": name,
        "pretrained_cfg": plain,
        "source": source,
        "pretrained": source != RANDOM_SOURCE,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def read_weights_meta(path: str | Path, obj=None) -> dict:
    """The metadata (everything but the tensors) of an artkit weights file or checkpoint; {} for a plain state
    dict or safetensors."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return {}
    obj = load_torch(path) if obj is None else obj
    if not isinstance(obj, dict):
        return {}
    check_weights_meta(obj, path)
    if obj.get("format") == WEIGHTS_FORMAT:
        return {k: v for k, v in obj.items() if k != "state_dict"}
    if obj.get("format") == "artkit-checkpoint":
        return {
            "model": obj.get("model"),
            "source": f"artkit checkpoint (epoch {obj.get('epoch')})",
            "pretrained_cfg": {
                "input_size": [3, obj.get("img_size"), obj.get("img_size")],
                "mean": obj.get("mean"),
                "std": obj.get("std"),
            },
        }
    return {}


def holds_random_init(meta: dict) -> bool:
    """True for the metadata (:func:`read_weights_meta`) of a weights file made from a randomly initialised model
    (``artkit weights save --no-pretrained``): training from it is training from scratch."""
    return meta.get("pretrained") is False or meta.get("source") == RANDOM_SOURCE


def check_weights_meta(obj, path: str | Path) -> None:
    """An artkit weights file's or checkpoint's metadata, against the schema (a plain state dict has none)."""
    if not isinstance(obj, dict):
        return
    if obj.get("format") == WEIGHTS_FORMAT:
        check_name(obj.get("model"), path)
        check_pretrained_cfg(obj.get("pretrained_cfg", {}), path)
        if obj.get("pretrained") is not None and not isinstance(obj["pretrained"], bool):
            raise ArtkitError(f"{path} has an invalid 'pretrained' entry", "save the weights file again")
        if obj.get("source") is not None and not isinstance(obj["source"], str):
            raise ArtkitError(f"{path} has an invalid 'source' entry", "save the weights file again")
    elif obj.get("format") == "artkit-checkpoint":
        check_checkpoint(obj, path)
    else:
        check_plain({k: v for k, v in obj.items() if not isinstance(v, dict | torch.Tensor)}, path, "metadata")


def describe_weights(path: str | Path) -> WeightsInfo:
    path = Path(path)
    obj = _read(path)
    state = _extract_state_dict(obj, path)
    meta = read_weights_meta(path, obj)
    cfg = meta.get("pretrained_cfg") or {}
    kind = {WEIGHTS_FORMAT: "artkit weights", "artkit-checkpoint": "artkit checkpoint"}.get(
        obj.get("format") if isinstance(obj, dict) else None, "state dict"
    )
    classes = obj.get("classes") if isinstance(obj, dict) else None
    size = cfg.get("input_size")
    return WeightsInfo(
        path=path,
        kind=kind,
        model=meta.get("model"),
        tensors=len(state),
        parameters=int(sum(v.numel() for v in state.values() if v.is_floating_point())),
        classes=len(classes) if classes else cfg.get("num_classes"),
        input_size=int(size[-1]) if size else None,
        mean=cfg.get("mean"),
        std=cfg.get("std"),
        source=meta.get("source"),
    )


def save_weights(cfg) -> WeightsInfo:
    """``artkit weights save``: timm's pretrained weights (or a converted local state dict, or a random init) with
    their model name and normalisation, as one file for ``artkit train --weights`` on a machine without internet."""
    from artkit.models.factory import create_model
    from artkit.writer import save_torch

    if cfg.source and Path(cfg.source).resolve() == Path(cfg.out).resolve():
        raise ArtkitError(f"-o {cfg.out} is the --from file; it would be overwritten", "choose another -o")
    classes = _default_classes(cfg.model)
    if cfg.source:
        model = create_model(cfg.model, classes, pretrained=False)
        report = load_weights(model, cfg.source)
        source = f"converted from {Path(cfg.source).name} ({report.loaded} tensors)"
    else:
        model = create_model(cfg.model, classes, pretrained=cfg.pretrained)
        source = "timm pretrained weights" if cfg.pretrained else RANDOM_SOURCE
    save_torch(weights_file(cfg.model, model, source), cfg.out)
    return describe_weights(cfg.out)


def _default_classes(name: str) -> int:
    from timm.models import get_pretrained_cfg

    pretrained = get_pretrained_cfg(name)
    return int(getattr(pretrained, "num_classes", None) or 1000) if pretrained is not None else 1000
