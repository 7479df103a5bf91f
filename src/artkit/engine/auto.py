"""Resolving ``auto`` option values from the data, once, before a run starts; the run's config.yaml then
holds the chosen values and, under ``chosen``, why."""

from __future__ import annotations

from dataclasses import replace

from artkit.data.layout import discover
from artkit.data.recipe import choose_aug, choose_sampler
from artkit.engine.config import AUTO, TrainConfig


def resolve_auto(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with every ``auto`` value replaced by what the data calls for (explicit values are kept)."""
    if AUTO not in (cfg.aug, cfg.sampler):
        return cfg
    source = discover(cfg.data, cfg.train_csv, cfg.test_csv, cfg.columns)
    train = source.require_train()
    chosen = dict(cfg.chosen or {})
    changes = {}
    if cfg.aug == AUTO:
        test_paths = source.test["path"].tolist() if source.test is not None else None
        choice = choose_aug(train["path"].tolist(), test_paths)
        changes["aug"], chosen["aug"] = choice.value, f"{choice.value}: {choice.reason}"
    if cfg.sampler == AUTO:
        choice = choose_sampler(train["label"].value_counts().tolist())
        changes["sampler"], chosen["sampler"] = choice.value, f"{choice.value}: {choice.reason}"
    return replace(cfg, **changes, chosen=chosen)
