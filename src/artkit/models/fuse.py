"""Inference-only fusion of each convolution with the batch norm it feeds (Ultralytics' ``model.fuse()``): the
norm's fixed affine folds into the convolution's weights and bias, so a forward pass skips one full read and write
of every normalised activation (bench/results/train_speed.csv: bare_fused_forward_ips against bare_forward_ips).

Pairs are found by running the model once, not by reading its code: a norm is fused only when its input is the
output of a convolution, and the fused model must give the unfused one's logits on a probe batch, or it is not
used. A fused model is for inference only (its norms are gone, so training it would not normalise). The same copy
pads kernels instead of inputs for TensorFlow's 'same' padding (models/same_pad.py), checked by the same logits.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

# fused logits may differ from unfused ones by float rounding only
FUSE_RTOL = 1e-3


def conv_norm_pairs(model: nn.Module, probe: torch.Tensor) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """(convolution, batch norm) pairs where the norm's input was the convolution's output in a forward of
    ``probe``; a convolution whose output feeds more than one norm is left out."""
    produced: dict[int, tuple[nn.Conv2d, torch.Tensor]] = {}  # tensors kept alive so their ids stay unique
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []

    def after_conv(conv, _inputs, output):
        produced[id(output)] = (conv, output)

    def before_norm(norm, inputs):
        if id(inputs[0]) in produced:
            pairs.append((produced[id(inputs[0])][0], norm))

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(after_conv))
        elif _fusable_norm(module):
            hooks.append(module.register_forward_pre_hook(before_norm))
    try:
        with torch.no_grad():
            model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    convs = [conv for conv, _ in pairs]
    return [(conv, norm) for conv, norm in pairs if convs.count(conv) == 1]


def _fusable_norm(module: nn.Module) -> bool:
    """A BatchNorm2d with running statistics, plain or timm's norm + activation (whose forward is norm, drop,
    act); other subclasses may do more in their forward, so they are not fused."""
    if not isinstance(module, nn.BatchNorm2d) or module.running_mean is None:
        return False
    return type(module) is nn.BatchNorm2d or (hasattr(module, "act") and hasattr(module, "drop"))


def _after_norm(norm: nn.BatchNorm2d) -> nn.Module:
    """What is left of ``norm`` once its affine lives in the convolution: its dropout and activation, if any."""
    return nn.Sequential(norm.drop, norm.act) if type(norm) is not nn.BatchNorm2d else nn.Identity()


@contextlib.contextmanager
def full_fp32_math():
    """No TF32 on a GPU while the two models are compared: cuDNN's TF32 convolutions (on by default) can differ
    from fp32 by more than :data:`FUSE_RTOL` allows, and a comparison under them could refuse a sound fusion.
    torch 2.9 has a new API for this, and refuses to read the old flags once the new one is used: each torch gets
    its own."""
    backends = torch.backends
    if hasattr(getattr(backends.cudnn, "conv", None), "fp32_precision"):
        flags = [(backends.cudnn.conv, "fp32_precision", "ieee"), (backends.cuda.matmul, "fp32_precision", "ieee")]
    else:
        flags = [(backends.cudnn, "allow_tf32", False), (backends.cuda.matmul, "allow_tf32", False)]
    saved = [getattr(owner, name) for owner, name, _ in flags]
    for owner, name, value in flags:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for (owner, name, _), value in zip(flags, saved):
            setattr(owner, name, value)


def fuse_conv_bn(model: nn.Module, probe: torch.Tensor) -> tuple[nn.Module, int]:
    """A copy of ``model`` (in eval mode) with its convolution + batch norm pairs fused, and how many were; the
    model itself, and 0, when the copy would change nothing or its logits on ``probe`` differ from the model's. The
    copy's TensorFlow-'same' convolutions also pad their kernels, not their inputs (:mod:`artkit.models.same_pad`),
    which is faster for inference only: for training, the larger kernels' backward costs more than the copy
    saved (bench/results/same_pad.csv)."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    from artkit.models.same_pad import pad_kernels_not_inputs

    model.eval()
    fused = copy.deepcopy(model)
    pairs = conv_norm_pairs(fused, probe)
    padless = pad_kernels_not_inputs(fused)
    if not pairs and not padless:
        return model, 0
    names = {module: name for name, module in fused.named_modules()}
    for conv, norm in pairs:
        weight, bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias
        )
        conv.weight, conv.bias = weight, bias
        parent, _, attr = names[norm].rpartition(".")
        setattr(fused.get_submodule(parent), attr, _after_norm(norm))
    with torch.no_grad(), full_fp32_math():
        expected, got = model(probe).float(), fused(probe).float()
    if not bool(torch.isfinite(expected).all()):  # diverged weights: nothing to compare, and nothing to speed up
        return model, 0
    scale = float(expected.abs().max()) or 1.0
    if not torch.allclose(got, expected, rtol=FUSE_RTOL, atol=FUSE_RTOL * scale):
        return model, 0
    return fused, len(pairs)
