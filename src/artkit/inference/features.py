"""Eval's features: the classifier's input of each image, taken in the same pass as its logits."""

from __future__ import annotations

import numpy as np
import torch


class WithFeatures(torch.nn.Module):
    """``model``, answering each image with one row: its logits, then the input its classifier took (the pooled
    features). Inference treats the row as logits, so the features are averaged over TTA views, copied to the host
    and run in parts after an out-of-memory error as the logits are, and never kept from a call that failed."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.taken: torch.Tensor | None = None
        self.hook = model.get_classifier().register_forward_hook(self._take)

    def _take(self, module, inputs, output) -> None:
        self.taken = inputs[0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.model(images)
        features, self.taken = self.taken, None
        return torch.cat([logits.float(), features.float().flatten(1)], dim=1)

    def remove(self) -> None:
        self.hook.remove()


def split_features(rows: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(logits, features) of :class:`WithFeatures`'s rows, each an array of its own."""
    return np.ascontiguousarray(rows[:, :classes]), np.ascontiguousarray(rows[:, classes:])
