"""TensorFlow's 'same' padding without copying the input, for inference.

timm's ``tf_*`` models (EfficientNet-Lite, EfficientNet-B* ported from TensorFlow) pad the input of each strided
convolution by one more pixel on the right and bottom than on the left and top. timm does it with ``F.pad``, a full
copy of the activation before every such convolution. The same sums come from padding the small kernel instead: a
zero row and column at its top and left, and symmetric padding that the convolution does itself. The parameters and
the state dict stay as they are; only the module's forward changes.

A no-grad forward of tf_efficientnet_lite0 runs 1.14x (128 px) to 1.22x (224 px) faster this way on a CPU in fp32,
1.07-1.10x in bf16 (bench/results/same_pad.csv), so the inference copy of :func:`artkit.models.fuse.fuse_conv_bn`
uses it. Training keeps timm's forward: the larger kernels' backward gained 1.02-1.04x in the median in fp32 but
lost up to 0.90x in single rounds, and ran 0.80x in bf16. On other devices the module runs timm's forward (not yet
measured on a GPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers.conv2d_same import Conv2dSame, conv2d_same
from timm.layers.padding import get_same_padding
from torch import nn


def same_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> torch.Tensor:
    """``F.conv2d`` with TensorFlow's 'same' padding for ``x``'s size, as timm's ``conv2d_same`` computes it."""
    padding, shift = [], []
    for size, kernel, step, dil in zip(x.shape[-2:], weight.shape[-2:], stride, dilation):
        total = get_same_padding(size, kernel, step, dil)
        if total % 2 and dil != 1:  # a dilated kernel cannot move by one pixel: pad the input as timm does
            return conv2d_same(x, weight, bias, stride, (0, 0), dilation, groups)
        padding.append((total + 1) // 2)
        shift.append(total % 2)
    if any(shift):  # the extra right/bottom pixel becomes a zero tap at the kernel's top/left
        weight = F.pad(weight, (shift[1], 0, shift[0], 0))
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


class PadlessConv2dSame(Conv2dSame):
    """timm's ``Conv2dSame`` (same parameters, same outputs) that pads its kernel, not its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":  # measured on CPUs only; a GPU's depthwise kernels are tuned for 3x3 and 5x5
            return super().forward(x)
        return same_conv2d(x, self.weight, self.bias, self.stride, self.dilation, self.groups)


def pad_kernels_not_inputs(model: nn.Module) -> int:
    """Give every timm ``Conv2dSame`` of ``model`` the copy-free forward, in place; returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is Conv2dSame:
            module.__class__ = PadlessConv2dSame
            count += 1
    return count
