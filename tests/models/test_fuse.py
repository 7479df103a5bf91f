"""Inference fusion of convolution + batch norm: same logits, fewer norms, and never a wrong fusion."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from artkit.models.factory import create_model
from artkit.models.fuse import conv_norm_pairs, fuse_conv_bn


def _with_statistics(model: nn.Module) -> nn.Module:
    """Running statistics far from the defaults, so a fusion that ignored them would change the logits."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


def _probe(size: int = 32) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))


def _norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("name", ["test_efficientnet", "resnet10t"])
def test_a_fused_model_gives_the_models_logits_without_its_norms(name: str):
    model = _with_statistics(create_model(name, num_classes=5, pretrained=False))
    before = _norms(model)
    fused, count = fuse_conv_bn(model, _probe())
    assert count > 0 and _norms(fused) == before - count and _norms(model) == before  # the model is untouched
    x = _probe()
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), rtol=1e-4, atol=1e-4)


class _ConvFeedsTwo(nn.Module):
    """A convolution whose output feeds a norm and a shortcut: fusing the norm into it would change the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv(x)
        return self.head((self.norm(y) + y).mean((2, 3)))


class _NormBeforeConv(nn.Module):
    """Registered conv first, but the norm runs on the input: registration order is not execution order."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.norm = nn.BatchNorm2d(3)

    def forward(self, x):
        return self.conv(self.norm(x)).mean((2, 3))


def test_a_norm_that_does_not_follow_a_convolution_is_not_fused():
    model = _with_statistics(_NormBeforeConv())
    assert conv_norm_pairs(model, _probe()) == []
    fused, count = fuse_conv_bn(model, _probe())
    assert fused is model and count == 0


def test_a_fusion_that_would_change_the_logits_is_not_used():
    model = _with_statistics(_ConvFeedsTwo())
    assert len(conv_norm_pairs(model, _probe())) == 1  # it looks fusable from the norm's side
    fused, count = fuse_conv_bn(model, _probe())
    assert fused is model and count == 0


def test_a_model_with_non_finite_outputs_is_left_as_it_is():
    model = _with_statistics(create_model("test_efficientnet", num_classes=5, pretrained=False))
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))  # a diverged run's weights
    fused, count = fuse_conv_bn(model, _probe())
    assert fused is model and count == 0


def test_the_comparison_runs_without_tf32_and_leaves_the_settings_as_they_were():
    """On a GPU, cuDNN's TF32 convolutions (on by default) differ from fp32 by more than the check allows: under
    them every fusion was refused, silently, and validation ran the slower model."""
    if not hasattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision"):
        pytest.skip("torch before 2.9 has only the legacy TF32 flags")
    model = _with_statistics(create_model("test_efficientnet", num_classes=5, pretrained=False))
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    seen = []
    model.register_forward_hook(lambda *_: seen.append((conv.fp32_precision, matmul.fp32_precision)))
    before = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "tf32"
    try:
        count = fuse_conv_bn(model, _probe())[1]
        assert count > 0 and seen[-1] == ("ieee", "ieee")  # the model's own logits, computed for the comparison
        assert (conv.fp32_precision, matmul.fp32_precision) == ("tf32", "tf32")
    finally:
        conv.fp32_precision, matmul.fp32_precision = before
