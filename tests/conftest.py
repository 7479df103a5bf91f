"""Shared fixtures: tiny synthetic datasets in both layouts, made fresh in tmp folders."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import REAL_DATA, make_dacon, make_folders

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach the network; pretrained loads fail fast
# caches (scans, decoded images) in a folder of this session, removed at its end, never the user's ~/.cache
os.environ.setdefault("ARTKIT_CACHE_DIR", tempfile.mkdtemp(prefix="artkit-cache-"))
atexit.register(shutil.rmtree, os.environ["ARTKIT_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def dacon(tmp_path: Path) -> Path:
    return make_dacon(tmp_path / "data")


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    return make_folders(tmp_path / "folders")


def pytest_collection_modifyitems(config, items):
    import torch

    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_real = pytest.mark.skip(reason=f"real data not found at {REAL_DATA}")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)
        if "realdata" in item.keywords and not REAL_DATA.is_dir():
            item.add_marker(skip_real)
