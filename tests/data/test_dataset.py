"""The DataLoader every command builds (artkit.data.dataset.data_loader)."""

from __future__ import annotations

import os
import sys

import pytest
from torch.utils.data import Dataset

from artkit.data.dataset import data_loader


class Niceness(Dataset):
    """Each item is the priority (niceness) of the process that loads it."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> int:
        return os.nice(0)


@pytest.mark.skipif(sys.platform == "win32" or os.nice(0) >= 19, reason="needs process priorities below this one")
def test_loader_processes_below_the_model_run_at_the_lowest_priority():
    mine = os.nice(0)
    below = [int(v) for batch in data_loader(Niceness(), 1, False, epochs=False, below_model=True) for v in batch]
    level = [int(v) for batch in data_loader(Niceness(), 1, False, epochs=False) for v in batch]
    assert below == [19, 19] and level == [mine, mine] and os.nice(0) == mine
