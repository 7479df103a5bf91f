"""The inference runner's pieces that a whole command does not show one by one."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from artkit.engine.steps import SYNC_EVERY
from artkit.inference.runner import _capture_features


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(4, 3), nn.Linear(3, 2)

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_eval_features_are_each_batchs_mean_over_its_views_copied_every_few_batches_in_order():
    net, store = Net().eval(), []
    hook, flush = _capture_features(net, store, views=2)
    batches = torch.randn(2 * SYNC_EVERY + 3, 5, 4)  # 35 batches of 5 rows
    with torch.no_grad():
        for batch in batches:
            net(batch)
            net(batch.flip(-1))  # the second view
        hook.remove()
        flush()
        expected = ((net.body(batches) + net.body(batches.flip(-1))) / 2).reshape(-1, 3).numpy()
    assert [len(part) for part in store] == [5 * SYNC_EVERY, 5 * SYNC_EVERY, 5 * 3]  # three copies, not 35
    assert np.allclose(np.concatenate(store), expected, atol=1e-6)
