import pytest
import torch

from artkit.errors import ArtkitError
from artkit.inference.tta import build_views, parse_tta


@pytest.mark.parametrize(
    "spec,n",
    [
        ("none", 1),
        ("hflip", 2),
        ("vflip", 2),
        ("five-crop", 5),
        ("multi-scale", 3),
        ("hflip,five-crop", 10),
        ("none,hflip", 2),
    ],
)
def test_view_counts(spec, n):
    assert len(build_views(spec)) == n


def test_views_keep_shape_except_multi_scale():
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    for view in build_views("hflip,vflip,five-crop"):
        assert view(x).shape == x.shape
    flipped = build_views("hflip")[1](x)
    assert torch.equal(flipped[..., 0], x[..., -1])
    sizes = sorted(v(x).shape[-1] for v in build_views("multi-scale"))
    assert sizes == [14, 16, 18]


def test_unknown_view():
    with pytest.raises(ArtkitError, match="rotate"):
        parse_tta("hflip,rotate")
