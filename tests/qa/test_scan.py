"""The per-image scanner: facts per file, perceptual hashes, exact pixel identity, the cache.

Also home of the synthetic datasets with planted problems that test_eda.py and test_clean.py use.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import artkit.qa.scan as scan_mod
from artkit.data.layout import discover
from artkit.errors import ArtkitError
from artkit.qa.duplicates import find_duplicates, hamming_pairs, hash_array
from artkit.qa.scan import scan_file, scan_images

from helpers import LEAKED_TRAIN_ID, make_clean, make_planted, picture


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(cache))
    return cache


# ---------------------------------------------------------------- facts per file


def test_scan_file_names_each_kind_of_broken_file(tmp_path: Path):
    root = make_planted(tmp_path / "data")
    t = root / "train"
    kinds = {
        name: scan_file(str(t / name))["error_kind"]
        for name in ("trunc.jpg", "zero.jpg", "text.jpg", "gone.jpg", "0000.jpg")
    }
    assert kinds == {
        "trunc.jpg": "truncated",
        "zero.jpg": "empty",
        "text.jpg": "not-an-image",
        "gone.jpg": "missing",
        "0000.jpg": "",
    }
    good = scan_file(str(t / "0000.jpg"))
    assert good["readable"] and good["format"] == "JPEG" and good["mode"] == "RGB"
    assert (good["width"], good["height"]) == Image.open(t / "0000.jpg").size
    assert len(good["phash"]) == 16 and len(good["file_md5"]) == 32
    assert scan_file("")["error_kind"] == "missing"


def test_grayscale_stored_as_rgb_and_as_l(tmp_path: Path):
    picture(1, gray=True).save(tmp_path / "rgb_gray.jpg", quality=90)
    picture(2).convert("L").save(tmp_path / "l.png")
    picture(3).save(tmp_path / "colour.jpg", quality=90)
    rgb_gray, l_mode, colour = (scan_file(str(tmp_path / n)) for n in ("rgb_gray.jpg", "l.png", "colour.jpg"))
    assert rgb_gray["is_grayscale"] and not rgb_gray["stored_gray"] and rgb_gray["mode"] == "RGB"
    assert l_mode["is_grayscale"] and l_mode["stored_gray"]
    assert not colour["is_grayscale"]


def test_phash_close_for_resized_copy_and_far_for_different_images(tmp_path: Path):
    pic = picture(7, (200, 160))
    pic.save(tmp_path / "a.jpg", quality=92)
    pic.resize((120, 96), Image.BILINEAR).save(tmp_path / "b.jpg", quality=60)
    hashes = {n: int(scan_file(str(tmp_path / n))["phash"], 16) for n in ("a.jpg", "b.jpg")}
    others = []
    for seed in range(20, 40):
        picture(seed).save(tmp_path / f"o{seed}.jpg")
        others.append(int(scan_file(str(tmp_path / f"o{seed}.jpg"))["phash"], 16))
    assert bin(hashes["a.jpg"] ^ hashes["b.jpg"]).count("1") <= 6
    assert min(bin(hashes["a.jpg"] ^ o).count("1") for o in others) > 12


def test_hamming_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, 300, dtype=np.int64).astype(np.uint64)
    h[5] = h[9] ^ np.uint64(0b1011)  # distance 3
    got = set(hamming_pairs(h, threshold=20, block=64))
    want = {
        (i, j, bin(int(h[i]) ^ int(h[j])).count("1"))
        for i in range(300)
        for j in range(i + 1, 300)
        if bin(int(h[i]) ^ int(h[j])).count("1") <= 20
    }
    assert got == want and (5, 9, 3) in got
    cross = hamming_pairs(h[:10], h[5:15], threshold=0)
    assert {(i, j) for i, j, _ in cross} == {(k, k - 5) for k in range(5, 10)}


def test_same_pixels_in_other_file_formats_are_exact_duplicates(tmp_path: Path):
    # a JPEG big enough to be draft-decoded, and lossless copies of its decoded pixels: the bytes differ,
    # the pixels do not; a re-compressed copy is only a near duplicate
    picture(11, (256, 224)).save(tmp_path / "a.jpg", quality=90)
    pixels = Image.open(tmp_path / "a.jpg").convert("RGB")
    pixels.save(tmp_path / "a.png")
    pixels.save(tmp_path / "a.bmp")
    pixels.save(tmp_path / "a_q70.jpg", quality=70)
    picture(12, (256, 224)).save(tmp_path / "other.jpg")
    names = ["a.jpg", "other.jpg", "a.png", "a_q70.jpg", "a.bmp"]
    res = scan_images([str(tmp_path / n) for n in names], workers=1, use_cache=False)
    assert res.table.at[0, "pixel_md5"] == ""  # draft-decoded: no free pixel hash
    dups = find_duplicates(res.table, None, near_threshold=8, workers=1, use_cache=False)
    assert dups.exact_groups == [[0, 2, 4]]
    assert {(i, j) for i, j, _ in dups.near_pairs} == {(0, 3), (2, 3), (3, 4)}
    assert dups.pixel_decodes >= 2


def test_byte_copy_of_a_file_with_a_cached_pixel_hash_is_still_exact(tmp_path: Path):
    picture(13, (256, 224)).save(tmp_path / "a.jpg", quality=90)
    Image.open(tmp_path / "a.jpg").save(tmp_path / "a_q70.jpg", quality=70)
    first = scan_images([str(tmp_path / "a.jpg"), str(tmp_path / "a_q70.jpg")], workers=1)
    assert find_duplicates(first.table, None, 8, workers=1).pixel_decodes == 2  # now cached for a.jpg
    shutil.copyfile(tmp_path / "a.jpg", tmp_path / "copy.jpg")
    second = scan_images([str(tmp_path / "a.jpg"), str(tmp_path / "copy.jpg")], workers=1)
    assert second.table.at[0, "pixel_md5"] and not second.table.at[1, "pixel_md5"]
    assert find_duplicates(second.table, None, 8, workers=1).exact_groups == [[0, 1]]


def test_train_copy_in_test_is_a_leak(tmp_path: Path):
    root = make_planted(tmp_path / "data")
    inputs = discover(root, tolerant=True)
    n = len(inputs.train)
    res = scan_images(inputs.train["path"].tolist() + inputs.test["path"].tolist(), workers=2)
    tr, te = res.table.iloc[:n].reset_index(drop=True), res.table.iloc[n:].reset_index(drop=True)
    dups = find_duplicates(tr, te, 8, workers=1)
    leaked = {(inputs.train.at[i, "id"], inputs.test.at[t, "id"]) for i, t, _, _ in dups.leaks}
    assert leaked == {(LEAKED_TRAIN_ID, "TEST_LEAK")}


# ---------------------------------------------------------------- the scan and its cache


def test_scan_keeps_input_order_and_repeats(tmp_path: Path):
    root = make_clean(tmp_path / "data", per_class=2)
    files = sorted(str(p) for p in (root / "train").glob("*.jpg"))
    paths = files + [files[0], str(root / "missing.jpg"), ""]
    seen = []
    res = scan_images(paths, workers=1, progress=lambda d, t: seen.append((d, t)))
    assert res.table["path"].tolist()[:-1] == paths[:-1] and res.table["path"].iloc[-1] == ""
    assert res.table["readable"].tolist() == [True] * 7 + [False, False]
    assert seen[-1] == (8, 8)  # unique files


def test_warm_cache_does_not_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _cache: Path):
    root = make_planted(tmp_path / "data")
    paths = discover(root, tolerant=True).train["path"].tolist()
    cold = scan_images(paths, workers=1)
    assert cold.cache_hits == 0 and cold.decoded > 0 and (_cache / "scan.sqlite").is_file()

    calls = []
    real = scan_mod.load_image
    monkeypatch.setattr(scan_mod, "load_image", lambda *a, **k: calls.append(a) or real(*a, **k))
    warm = scan_images(paths, workers=1)
    assert calls == [] and warm.decoded == 0
    assert warm.cache_hits == sum(1 for p in set(paths) if os.path.exists(p))
    pd.testing.assert_frame_equal(cold.table, warm.table)

    # a changed file is decoded again; the others still come from the cache
    changed = root / "train" / "0003.jpg"
    picture(999).save(changed)
    os.utime(changed, ns=(1, 1))
    again = scan_images(paths, workers=1)
    assert again.decoded == 1 and len(calls) == 1
    assert scan_images(paths, workers=1, use_cache=False).cache_hits == 0


def test_threads_and_processes_agree(tmp_path: Path):
    root = make_planted(tmp_path / "data")
    paths = discover(root, tolerant=True).train["path"].tolist()
    a = scan_images(paths, workers=2, use_cache=False, executor="process").table
    b = scan_images(paths, workers=2, use_cache=False, executor="thread").table
    pd.testing.assert_frame_equal(a, b)


def test_unwritable_cache_is_not_an_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    picture(1).save(tmp_path / "a.jpg")
    res = scan_images([str(tmp_path / "a.jpg")], workers=1, cache_folder=blocker / "sub")
    assert res.table.at[0, "readable"] and res.cache_path is None


def test_tolerant_discover_reports_bad_folder_and_keeps_empty_cells(tmp_path: Path):
    with pytest.raises(ArtkitError, match="data folder not found"):
        discover(tmp_path / "nope", tolerant=True)
    root = make_planted(tmp_path / "data")
    inputs = discover(root, tolerant=True)
    assert (inputs.train["label"] == "").sum() == 1
    assert inputs.label_col == "artist" and inputs.image_col == "img_path" and inputs.test_source == "test.csv"
    with pytest.raises(ArtkitError, match="empty label"):
        discover(root)
    (root / "test.csv").unlink()
    assert discover(root, tolerant=True).test_source == "test/ folder"


def test_hash_array_round_trip():
    assert hash_array(["ffffffffffffffff", "0000000000000001"]).tolist() == [2**64 - 1, 1]
