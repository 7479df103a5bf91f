"""Checks on the real paintings in ../shared/data (skipped when absent)."""

import pytest

from artkit.data.images import load_image
from artkit.data.layout import discover

from helpers import REAL_DATA

pytestmark = pytest.mark.realdata


def test_dacon_names_round_trip_and_full_size_images_load():
    src = discover(REAL_DATA / "dacon-sample", test_csv=None)
    assert len(src.train) == 5911 and src.train["label"].nunique() == 50
    assert "Albrecht Du rer" in set(src.train["label"])  # the competition's own spelling, kept as is
    counts = src.train["label"].value_counts()
    assert counts.max() == 629 and counts.min() == 21
    for path in src.train["path"][:11]:
        img = load_image(path, min_size=256)
        assert img.mode == "RGB" and min(img.size) >= 256


def test_paintings50_keeps_the_umlaut():
    src = discover(REAL_DATA / "paintings50")
    assert "Albrecht Dürer" in set(src.train["label"]) and len(src.train) == 7125
