"""Model factory: any timm model by name, with clear failures for the ways weights go wrong."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch.nn as nn

from artkit.errors import ArtkitError
from artkit.models.pretrained import OFFLINE_HINT, cached, hub_reachable


def _unknown_model(name: str) -> ArtkitError:
    import timm

    from artkit.models.catalog import closest_names

    close = closest_names(name, timm.list_models())
    hint = f"did you mean: {', '.join(close)}?" if close else "list models with `artkit models PATTERN`"
    return ArtkitError(f"unknown model '{name}'", hint)


def has_pretrained(name: str) -> bool:
    import timm

    return bool(timm.list_pretrained(name)) or bool(timm.list_pretrained(f"{name}.*"))


def check_pretrained_available(name: str) -> None:
    """Stop in seconds when pretrained weights cannot be had: timm has none, or they are not cached and the hub
    cannot be reached."""
    if not has_pretrained(name):
        raise ArtkitError(f"timm has no pretrained weights for '{name}'", OFFLINE_HINT)
    if not cached(name) and not hub_reachable():
        raise ArtkitError(
            f"pretrained weights for '{name}' are not cached here and the model hub cannot be reached (no network)",
            OFFLINE_HINT,
        )


@contextmanager
def _offline_if_cached(name: str | None):
    """Cached weights load without the network: no update checks, no retries."""
    if name is None or not cached(name):
        yield
        return
    saved = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved


def create_model(
    name: str, num_classes: int, pretrained: bool = False, drop_rate: float = 0.0, drop_path_rate: float | None = None
) -> nn.Module:
    """``timm.create_model`` with artkit's rules: an unknown name or unavailable pretrained weights
    stop with a message; never a silent fall-back to random initialisation."""
    import timm

    if not timm.is_model(name):
        raise _unknown_model(name)
    kwargs: dict = {"num_classes": num_classes, "drop_rate": drop_rate}
    if drop_path_rate:
        kwargs["drop_path_rate"] = drop_path_rate
    if pretrained:
        check_pretrained_available(name)
    try:
        with _offline_if_cached(name if pretrained else None):
            return timm.create_model(name, pretrained=pretrained, **kwargs)
    except TypeError as exc:
        if "drop_path_rate" in str(exc):
            raise ArtkitError(f"model '{name}' does not take --drop-path-rate", "leave it out for this model") from None
        raise
    except Exception as exc:  # network and hub errors come in many types
        if not pretrained:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtkitError(
            f"could not get pretrained weights for '{name}' ({type(exc).__name__}: {first[:200]})", OFFLINE_HINT
        ) from None


def set_backbone_frozen(model: nn.Module, frozen: bool) -> None:
    """Freeze (or unfreeze) everything but the classifier: frozen parameters take no gradients, so
    the backbone costs a forward pass only. Its BatchNorm statistics are kept by :func:`train_mode`."""
    head = {id(p) for p in classifier_module(model).parameters()}
    for param in model.parameters():
        if id(param) not in head:
            param.requires_grad_(not frozen)


def classifier_module(model: nn.Module) -> nn.Module:
    get = getattr(model, "get_classifier", None)
    head = get() if get is not None else None
    if not isinstance(head, nn.Module) or not any(True for _ in head.parameters()):
        raise ArtkitError(f"cannot find the classifier of {type(model).__name__}", "leave --freeze-epochs out")
    return head


def train_mode(model: nn.Module, backbone_frozen: bool = False) -> None:
    """``model.train()``; with a frozen backbone only the classifier trains, the rest stays in eval mode
    (BatchNorm keeps its pretrained running statistics, dropout before the classifier is off)."""
    if backbone_frozen:
        model.eval()
        classifier_module(model).train()
    else:
        model.train()


@dataclass(kw_only=True)
class DataConfig:
    """What a model expects of its input: image size and normalisation."""

    img_size: int
    mean: list[float]
    std: list[float]


def model_data_config(model: nn.Module, img_size: int | None = None) -> DataConfig:
    """Resolve image size and mean/std from the model's pretrained config (timm's defaults)."""
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=model)
    size = img_size or int(cfg["input_size"][-1])
    return DataConfig(img_size=size, mean=[float(v) for v in cfg["mean"]], std=[float(v) for v in cfg["std"]])
