"""Typed configuration objects; YAML in and out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from artkit.errors import ArtkitError


@dataclass
class TrainConfig:
    """Every option of ``artkit train``; saved whole to ``config.yaml`` in the run directory."""

    # data
    data: str = "data"
    train_csv: str | None = None
    id_col: str | None = None
    image_col: str | None = None
    label_col: str | None = None
    val_fraction: float = 0.2
    folds: int | None = None
    fold: int | None = None
    full: bool = False
    skip_bad: bool = False
    sampler: str = "none"
    aug: str = "light"
    img_size: int | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    # model
    model: str = "efficientnet_b0"
    pretrained: bool = True
    weights: str | None = None
    drop_rate: float = 0.0
    drop_path_rate: float | None = None
    freeze_epochs: int = 0
    # loss
    loss: str = "ce"
    label_smoothing: float = 0.0
    class_weights: str = "none"
    focal_gamma: float = 2.0
    # optimisation
    optimizer: str = "adamw"
    lr: float = 5e-4
    weight_decay: float = 0.05
    layer_decay: float | None = None
    momentum: float = 0.9
    scheduler: str = "cosine"
    warmup_epochs: float = 1.0
    min_lr: float = 1e-6
    step_epochs: int | None = None
    step_gamma: float = 0.1
    epochs: int = 10
    batch_size: int = 32
    grad_accum: int = 1
    clip_grad: float | None = None
    ema: bool = False
    ema_decay: float = 0.999
    # hardware
    device: str = "auto"
    amp: str = "auto"
    workers: int | None = None
    # run
    seed: int = 42
    monitor: str = "val_macro_f1"
    patience: int | None = None
    out: str = "runs"
    name: str | None = None
    resume: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def option_names(cls=TrainConfig) -> set[str]:
    return {f.name for f in fields(cls)}


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ArtkitError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ArtkitError(f"cannot parse {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ArtkitError(f"{path} must hold a mapping of option: value")
    return data


def config_from_mapping(mapping: dict[str, Any], cls=TrainConfig, source: str = "config") -> Any:
    """Build ``cls`` from a mapping, accepting dashed or underscored keys; unknown keys are errors."""
    known = option_names(cls)
    clean: dict[str, Any] = {}
    for key, value in mapping.items():
        name = str(key).replace("-", "_")
        if name not in known:
            close = [k for k in known if k.startswith(name[:4])]
            raise ArtkitError(f"unknown option '{key}' in {source}",
                              f"did you mean one of: {', '.join(sorted(close))}?" if close else None)
        clean[name] = value
    return cls(**clean)


def save_yaml(data: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
