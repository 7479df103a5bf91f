"""Options of ``artkit weights save`` and ``artkit weights show`` (see :mod:`artkit.options`)."""

from __future__ import annotations

from dataclasses import dataclass

from artkit.options import option


@dataclass(kw_only=True)
class WeightsSaveConfig:
    model: str = option(help="A timm model name, e.g. tf_efficientnet_lite0 (see `artkit models`).", argument=True)
    out: str = option(
        help="The weights file to write, e.g. weights/tf_efficientnet_lite0.pt.", short="-o", writes="weights"
    )
    source: str | None = option(
        None,
        "Convert this local state dict (.pt/.pth/.safetensors, e.g. from a pip "
        "package) instead of downloading timm's weights.",
        flag="--from",
        reads=True,
    )
    pretrained: bool = option(
        True,
        "Download timm's pretrained weights (needs internet); --no-pretrained writes a "
        "randomly initialised model, e.g. to try the offline steps.",
        negatable=True,
    )


@dataclass(kw_only=True)
class WeightsShowConfig:
    file: str = option(help="A weights file, artkit checkpoint or state dict.", argument=True, reads=True)
