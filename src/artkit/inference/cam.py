"""Grad-CAM (Selvaraju et al. 2017): where in the image the evidence for a class lies.

The activations of one layer (by default the last stage timm lists in ``model.feature_info``) are weighted by
the mean gradient of the class score over each channel; the positive part of the sum is the map. For ViT-like
models the same layer gives tokens, which are reshaped to their patch grid after the class/register tokens,
so one method serves convolutional and transformer models.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from artkit.errors import ArtkitError


def default_layer(model: nn.Module) -> str:
    """The last feature stage timm names for ``model``."""
    info = getattr(model, "feature_info", None)
    if info:
        last = info[-1] if isinstance(info, list) else info.get_dicts()[-1]
        if last.get("module"):
            return last["module"]
    raise ArtkitError(
        f"{type(model).__name__} names no feature stage for Grad-CAM",
        "pass --layer NAME (a module name from model.named_modules(), e.g. the last convolutional block)",
    )


def find_layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        import difflib

        close = difflib.get_close_matches(name, list(modules), n=3)
        raise ArtkitError(
            f"no layer named '{name}' in {type(model).__name__}",
            f"did you mean {', '.join(close)}?" if close else "list names with model.named_modules()",
        )
    return modules[name]


def _as_grid(acts: torch.Tensor, prefix_tokens: int) -> torch.Tensor:
    """(B, C, H, W) as it is; transformer tokens (B, N, C) to (B, C, h, w) without the prefix tokens."""
    if acts.dim() == 4:
        return acts
    if acts.dim() != 3:
        raise ArtkitError(
            f"Grad-CAM needs a layer with a spatial output; this one gives shape {tuple(acts.shape)}",
            "pass --layer with a convolutional stage or a transformer block",
        )
    tokens = acts[:, prefix_tokens:]
    side = int(math.isqrt(tokens.shape[1]))
    if side * side != tokens.shape[1]:
        raise ArtkitError(
            f"the layer's {tokens.shape[1]} tokens do not form a square patch grid", "pass --layer with another block"
        )
    return tokens.transpose(1, 2).reshape(acts.shape[0], acts.shape[2], side, side)


class GradCam:
    """Grad-CAM maps of ``model`` at ``layer`` (a module name; default: the last feature stage)."""

    def __init__(self, model: nn.Module, layer: str | None = None) -> None:
        self.model = model
        self.layer_name = layer or default_layer(model)
        self.layer = find_layer(model, self.layer_name)
        self.prefix_tokens = int(getattr(model, "num_prefix_tokens", 0) or 0)
        self._acts: torch.Tensor | None = None

    def _keep(self, module: nn.Module, inputs, output) -> None:
        output = output[0] if isinstance(output, tuple) else output
        output.retain_grad()
        self._acts = output

    def __call__(self, images: torch.Tensor, classes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(maps in [0, 1] at the images' size (B, H, W), logits (B, K)); ``classes`` defaults to the top class."""
        self.model.eval()
        handle = self.layer.register_forward_hook(self._keep)
        try:
            with torch.enable_grad():
                images = images.detach().requires_grad_(True)  # gradients flow even through frozen layers
                logits = self.model(images)
                classes = logits.argmax(1) if classes is None else classes
                self.model.zero_grad(set_to_none=True)
                logits.gather(1, classes.view(-1, 1)).sum().backward()
        finally:
            handle.remove()
        acts, grads = self._acts, self._acts.grad
        acts, grads = _as_grid(acts.detach(), self.prefix_tokens), _as_grid(grads, self.prefix_tokens)
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * acts).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        low = cam.flatten(1).min(1).values.view(-1, 1, 1)
        high = cam.flatten(1).max(1).values.view(-1, 1, 1)
        return ((cam - low) / (high - low).clamp_min(1e-8)).detach(), logits.detach()
