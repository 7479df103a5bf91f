"""TensorFlow 'same' padding by padding the kernel: the sums of timm's input-padding convolution, for any size."""

from __future__ import annotations

import pytest
import torch
from timm.layers.conv2d_same import Conv2dSame, conv2d_same

from artkit.models.factory import create_model
from artkit.models.fuse import fuse_conv_bn
from artkit.models.same_pad import PadlessConv2dSame, pad_kernels_not_inputs, same_conv2d


@pytest.mark.parametrize("height,width", [(32, 32), (31, 33), (17, 8), (1, 2)])
@pytest.mark.parametrize("kernel,stride,dilation", [(3, 2, 1), (5, 2, 1), (3, 1, 1), (4, 2, 1), (3, 2, 2), (1, 2, 1)])
@pytest.mark.parametrize("groups", [1, 4])
def test_a_padded_kernel_gives_the_sums_of_a_padded_input(height, width, kernel, stride, dilation, groups):
    gen = torch.Generator().manual_seed(height * 100 + width)
    x = torch.randn(2, 8, height, width, generator=gen)
    weight, bias = torch.randn(12, 8 // groups, kernel, kernel, generator=gen), torch.randn(12, generator=gen)
    expected = conv2d_same(x, weight, bias, (stride, stride), (0, 0), (dilation, dilation), groups)
    got = same_conv2d(x, weight, bias, (stride, stride), (dilation, dilation), groups)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _tf_model() -> torch.nn.Module:
    return create_model("tf_efficientnet_lite0", num_classes=3, pretrained=False)


def test_the_swap_keeps_parameters_and_outputs_and_gradients():
    model, swapped = _tf_model(), _tf_model()
    swapped.load_state_dict(model.state_dict())
    same = sum(type(m) is Conv2dSame for m in model.modules())
    assert same > 0 and pad_kernels_not_inputs(swapped) == same
    assert not any(type(m) is Conv2dSame for m in swapped.modules())
    assert {k: v.shape for k, v in swapped.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    x, y = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 2])
    for m in (model, swapped):
        m.train()
        torch.nn.functional.cross_entropy(m(x), y).backward()
    for (name, a), b in zip(model.named_parameters(), swapped.parameters()):
        scale = float(a.grad.abs().max()) or 1.0  # gradients of a random model run to thousands
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5 * scale, msg=name)
    model.eval()
    swapped.eval()
    with torch.no_grad():
        torch.testing.assert_close(swapped(x), model(x), rtol=1e-5, atol=1e-5)


def test_the_inference_copy_pads_kernels_and_the_model_keeps_timms_padding():
    model = _tf_model().eval()
    fused, count = fuse_conv_bn(model, torch.randn(2, 3, 64, 64))
    assert count > 0
    assert any(isinstance(m, PadlessConv2dSame) for m in fused.modules())
    assert not any(type(m) is Conv2dSame for m in fused.modules())
    assert not any(isinstance(m, PadlessConv2dSame) for m in model.modules())  # training's model is untouched
