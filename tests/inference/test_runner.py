"""The inference runner's pieces that a whole command does not show one by one."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from artkit.engine.device import Runtime
from artkit.engine.steps import SYNC_EVERY, predict_logits
from artkit.inference.features import WithFeatures, split_features

CPU = Runtime(device=torch.device("cpu"))
VIEWS = [lambda t: t, lambda t: -t]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(4, 3), nn.Linear(3, 2)

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _logits_and_features(net: nn.Module, data) -> tuple[np.ndarray, np.ndarray]:
    wrapped = WithFeatures(net)
    rows, _ = predict_logits(wrapped, data, CPU, VIEWS)
    wrapped.remove()
    return split_features(rows, 2)


def test_eval_features_are_each_images_mean_over_its_views_in_order_beside_unchanged_logits():
    net = Net().eval()
    batches = torch.randn(2 * SYNC_EVERY + 3, 5, 4)  # 35 batches of 5 rows: copied to the host three times
    logits, features = _logits_and_features(net, [(b, torch.zeros(5, dtype=torch.long)) for b in batches])
    with torch.no_grad():
        x = batches.reshape(-1, 4)
        expected = ((net.body(x) + net.body(-x)) / 2).numpy()
        np.testing.assert_allclose(logits, ((net(x) + net(-x)) / 2).numpy(), atol=1e-6)
    assert features.shape == (35 * 5, 3) and features.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(features, expected, atol=1e-6)
    assert not net.head._forward_hooks  # the wrapper leaves the model as it was


class FailsAfterItsHead(Net):
    """Runs out of GPU memory after its classifier ran, on the second view of a batch of more than two rows: the
    features of a batch run again in parts must be those of the parts only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        self.calls = getattr(self, "calls", 0) + 1
        if len(x) > 2 and self.calls % 2 == 0:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return out


def test_eval_features_of_a_batch_run_again_in_parts_are_its_parts_only():
    net, reference = FailsAfterItsHead().eval(), Net().eval()
    reference.load_state_dict(net.state_dict())
    data = [(torch.randn(5, 4), torch.zeros(5, dtype=torch.long)) for _ in range(3)]
    (logits, features), (want_logits, want_features) = (_logits_and_features(m, data) for m in (net, reference))
    assert features.shape == (15, 3)
    np.testing.assert_allclose(features, want_features, atol=1e-6)
    np.testing.assert_allclose(logits, want_logits, atol=1e-6)
