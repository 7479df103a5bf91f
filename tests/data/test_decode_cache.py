"""The decoded-image cache: the same pixels, batches and metrics as decoding every time; a changed file is decoded
again; the cache stays within its bound; entries are packed, a pack per writing process, and read by every process;
a damaged pack or an unwritable folder costs speed, never a run."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from artkit.data import decode_cache
from artkit.data.dataset import ImageTable
from artkit.data.decode_cache import INDEX_SUFFIX, PACK_SUFFIX, RECORD, DecodeCache, _forget, _packs, plan_decode_cache
from artkit.data.images import load_image
from artkit.data.transforms import create_transform, split_fixed, view_key

from helpers import TINY, artkit


def paintings(folder: Path, n: int = 6, size: tuple[int, int] = (90, 70)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def records(folder: Path) -> list[tuple]:
    """Every index record under ``folder``: (key, offset, *shape)."""
    return [r for index in folder.glob(f"*{INDEX_SUFFIX}") for r in RECORD.iter_unpack(index.read_bytes())]


def batches(table: ImageTable, keys) -> torch.Tensor:
    return torch.stack([table[k][0] for k in keys])


@pytest.mark.parametrize(
    ("preset", "stage"),
    [("crop", "train"), ("crop", "val"), ("light", "train"), ("none", "train")],  # nothing, all, some of it fixed
)
def test_cached_batches_are_the_batches_decoded_every_time(tmp_path: Path, preset: str, stage: str):
    paths = paintings(tmp_path / "img")
    cache = DecodeCache(tmp_path / "cache")

    def table(with_cache: bool) -> ImageTable:
        transform = create_transform(preset, 32, stage)
        return ImageTable(paths, [0] * len(paths), transform, decode_size=40, cache=cache if with_cache else None)

    keys = [(i, 100 + i) for i in range(len(paths))] if stage == "train" else list(range(len(paths)))
    plain = batches(table(False), keys)
    first = batches(table(True), keys)  # decodes and writes every entry
    assert len(records(cache.folder)) == len(paths)
    assert len(list(cache.folder.iterdir())) == 2  # one pack and its index, not a file per image
    again = batches(table(True), keys)  # reads them back, memory-mapped
    assert torch.equal(plain, first) and torch.equal(plain, again)


def test_a_cached_image_is_the_decoded_image_and_a_changed_file_is_decoded_again(tmp_path: Path):
    path = paintings(tmp_path / "img", n=2)[1]  # a JPEG: decoded at a reduced scale
    cache = DecodeCache(tmp_path / "cache")
    first = cache.decode(path, 30)
    assert np.array_equal(first, np.asarray(load_image(path, 30)))
    stamp = os.stat(path)
    Image.new("RGB", (90, 70), (200, 10, 10)).save(path)  # a plain colour: a smaller JPEG than the noise before
    with open(path, "ab") as fh:  # padded after its end marker to the same size, with the same mtime
        fh.write(b"\0" * (stamp.st_size - os.path.getsize(path)))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # only the content digest tells them apart
    assert os.path.getsize(path) == stamp.st_size
    second = cache.decode(path, 30)
    assert np.array_equal(second, np.asarray(load_image(path, 30))) and not np.array_equal(first, second)
    assert cache.decode(path, 60).shape != second.shape  # each decode size is an entry of its own


def test_a_damaged_pack_is_decoded_again(tmp_path: Path):
    paths = paintings(tmp_path / "img", n=2)
    cache = DecodeCache(tmp_path / "cache")
    expected = [cache.decode(p, None) for p in paths]
    (pack,) = cache.folder.glob(f"*{PACK_SUFFIX}")
    pack.write_bytes(pack.read_bytes()[:100])  # a run killed half-way through writing it
    assert all(np.array_equal(cache.decode(p, None), e) for p, e in zip(paths, expected))
    _forget(cache.folder)
    pack.unlink()
    os.mkfifo(pack)  # not a regular file: never opened
    assert all(np.array_equal(cache.decode(p, None), e) for p, e in zip(paths, expected))


def test_a_killed_runs_pack_is_filled_on_and_its_half_written_record_cut(tmp_path: Path):
    paths = paintings(tmp_path / "img", n=4)
    cache = DecodeCache(tmp_path / "cache")
    for p in paths[:2]:
        cache.decode(p, None)
    _forget(cache.folder)  # the run ends (as a killed one would)
    (index,) = cache.folder.glob(f"*{INDEX_SUFFIX}")
    with open(index, "ab") as fh:
        fh.write(b"\1" * 10)  # a record it was killed writing
    for p in paths:  # a new run: reads the two, appends two more to the same pack
        assert np.array_equal(cache.decode(p, None), np.asarray(load_image(p)))
    assert [f.name for f in cache.folder.iterdir()].count(index.name) == 1 and len(list(cache.folder.iterdir())) == 2
    assert index.stat().st_size == 4 * RECORD.size and len(records(cache.folder)) == 4


def delete(pack: Path) -> None:
    pack.unlink()  # room being made was killed between the index and the pack, or a hand deleted it


def lose_its_tail(pack: Path) -> None:
    with open(pack, "r+b") as fh:  # a power cut: the index kept both records, the pack only the first image
        fh.truncate(70 * 90 * 3)


@pytest.mark.parametrize("damage,packs", [(delete, 1), (lose_its_tail, 2)])
def test_a_pack_missing_bytes_its_index_names_is_never_filled_on(tmp_path: Path, damage, packs: int):
    paths = paintings(tmp_path / "img", n=3)  # all of one size: a record read from the wrong bytes would fit
    cache = DecodeCache(tmp_path / "cache")
    for p in paths[:2]:
        cache.decode(p, None)
    _forget(cache.folder)
    (pack,) = cache.folder.glob(f"*{PACK_SUFFIX}")
    damage(pack)
    cache.decode(paths[2], None)  # must start a pack of its own: appended to the old one, it would land under a record
    assert len(list(cache.folder.glob(f"*{PACK_SUFFIX}"))) == packs
    _forget(cache.folder)
    for p in paths:
        assert np.array_equal(cache.decode(p, None), np.asarray(load_image(p)))


def test_a_forked_loader_process_does_not_keep_the_parents_pack_locked(tmp_path: Path):
    import multiprocessing

    from artkit.writer import open_locked_append

    cache = DecodeCache(tmp_path / "cache")
    cache.decode(paintings(tmp_path / "img", n=1)[0], None)  # this process now holds its pack
    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    child = fork.Process(target=wait_after, args=(started,))
    child.start()
    try:
        assert started.wait(30)  # the child runs Python: the at-fork hook has run
        _forget(cache.folder)  # the parent is done with it; the child never wrote
        (index,) = cache.folder.glob(f"*{INDEX_SUFFIX}")
        held = open_locked_append(index, create=False)
        assert held is not None  # without the at-fork hook the child's inherited copy keeps the lock
        held.close()
    finally:
        child.kill()
        child.join()


def wait_after(started) -> None:
    import time

    started.set()
    time.sleep(30)


def test_an_unreadable_index_costs_speed_never_the_run(tmp_path: Path, monkeypatch):
    from artkit.errors import ArtkitError

    paths = paintings(tmp_path / "img", n=2)
    cache = DecodeCache(tmp_path / "cache")
    cache.decode(paths[0], None)
    _forget(cache.folder)

    def unreadable(*_args, **_kwargs):
        raise ArtkitError("too large a decode cache index")

    monkeypatch.setattr(decode_cache, "read_from", unreadable)
    for p in paths:
        assert np.array_equal(cache.decode(p, None), np.asarray(load_image(p)))


def test_entries_written_by_another_process_are_read_without_decoding(tmp_path: Path, monkeypatch):
    from artkit.data import dataset

    paths = paintings(tmp_path / "img", n=3)
    cache = DecodeCache(tmp_path / "cache")
    first = cache.decode(paths[0], None)  # this process holds a pack open: the other one starts its own
    code = "import sys; from pathlib import Path; from artkit.data.decode_cache import DecodeCache\n"
    code += "c = DecodeCache(Path(sys.argv[1]))\n"
    code += "for p in sys.argv[2:]: c.decode(p, None)"
    subprocess.run([sys.executable, "-c", code, str(cache.folder), *paths[1:]], check=True)
    assert len(list(cache.folder.glob(f"*{PACK_SUFFIX}"))) == 2
    monkeypatch.setattr(decode_cache, "load_image", lambda *_: pytest.fail("decoded again"))
    monkeypatch.setattr(decode_cache, "REFRESH_SECONDS", 0.0)
    table = ImageTable(paths, None, create_transform("none", 16, "val"), cache=cache)
    got = [table.decode(p) for p in paths]
    assert np.array_equal(got[0], first)
    assert all(np.array_equal(g, np.asarray(dataset.load_image(p))) for g, p in zip(got, paths))


def test_the_cache_stays_within_its_bound_and_says_when_images_do_not_fit(tmp_path: Path):
    folder = tmp_path / "cache"
    old = paintings(tmp_path / "old", n=4)
    new = paintings(tmp_path / "new", n=4)
    one = 70 * 90 * 3 + RECORD.size
    plan = plan_decode_cache("auto", old, None, folder, max_bytes=6 * one)
    for p in old:
        plan.cache.decode(p, None)
    assert len(records(folder)) == 4 and sum(size for _, size, _ in _packs(folder)) == 4 * one
    plan = plan_decode_cache("auto", new, None, folder, max_bytes=6 * one)  # room for 2 more: the old pack goes
    assert plan.cache is not None and "4 images decoded once" in plan.note
    for p in new:
        plan.cache.decode(p, None)
    assert sum(size for _, size, _ in _packs(folder)) <= 6 * one and len(records(folder)) == 4
    too_many = plan_decode_cache("auto", old + new, None, folder, max_bytes=6 * one)
    assert too_many.cache is None and "decode cache off: 8 images need about" in too_many.note
    assert plan_decode_cache("off", old, None, folder) == plan_decode_cache("auto", [], None, folder)


def test_a_cache_holding_the_images_is_not_emptied_to_make_room_for_them_again(tmp_path: Path, monkeypatch):
    folder, paths = tmp_path / "cache", paintings(tmp_path / "img", n=4)
    bound = 6 * (70 * 90 * 3 + RECORD.size)  # room for the 4, not for 4 more
    first = plan_decode_cache("auto", paths, None, folder, max_bytes=bound)
    expected = [first.cache.decode(p, None) for p in paths]
    again = plan_decode_cache("auto", paths, None, folder, max_bytes=bound)  # the next run over the same images
    assert len(records(folder)) == 4
    monkeypatch.setattr(decode_cache, "load_image", lambda *_: pytest.fail("decoded again"))
    assert all(np.array_equal(again.cache.decode(p, None), e) for p, e in zip(paths, expected))


def test_a_pack_another_process_appends_to_is_not_deleted_to_make_room(tmp_path: Path):
    from artkit.writer import open_locked_append

    folder = tmp_path / "cache"
    paths = paintings(tmp_path / "img", n=2)
    plan = plan_decode_cache("auto", paths, None, folder)
    plan.cache.decode(paths[0], None)
    _forget(folder)
    (index,) = folder.glob(f"*{INDEX_SUFFIX}")
    code = "import sys, time; from artkit.writer import open_locked_append; from pathlib import Path\n"
    code += "fh = open_locked_append(Path(sys.argv[1]), create=False); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code, str(index)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert open_locked_append(index, create=False) is None
        plan = plan_decode_cache("auto", paths[1:], None, folder, max_bytes=70 * 90 * 3 + RECORD.size)
        assert index.exists()  # it would have had to go to make room: the cache turns itself off instead
        assert plan.cache is None and "running artkit processes hold the cache's packs" in plan.note
    finally:
        holder.kill()
        holder.wait()
    plan_decode_cache("auto", paths[1:], None, folder, max_bytes=70 * 90 * 3 + RECORD.size)  # one not held
    assert not index.exists()  # nobody holds it now


def test_stale_entries_of_older_artkits_are_deleted(tmp_path: Path):
    folder = tmp_path / "cache"
    (folder / "ab").mkdir(parents=True)
    np.save(folder / "ab" / "0123.npy", np.zeros((4, 4, 3), np.uint8))  # before packs: a file per image
    (folder / "x.v1.idx").write_bytes(b"")
    (folder / f"orphan{PACK_SUFFIX}").write_bytes(b"\0" * 10)  # its index is gone: nothing can read it
    (tmp_path / "big").write_bytes(b"\0" * 10_000)
    (folder / f"link{INDEX_SUFFIX}").symlink_to(tmp_path / "big")  # must not count as 10 kB of cache, nor be read
    plan_decode_cache("auto", paintings(tmp_path / "img", n=1), None, folder)
    assert [p.name for p in folder.iterdir()] == [f"link{INDEX_SUFFIX}"] and _packs(folder) == []
    assert (tmp_path / "big").stat().st_size == 10_000


def test_an_unwritable_cache_folder_turns_the_cache_off_with_a_reason(tmp_path: Path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    plan = plan_decode_cache("auto", paintings(tmp_path / "img", n=2), None, blocked / "decoded")
    assert plan.cache is None and plan.note.startswith("decode cache off: cannot write to")


@pytest.mark.slow
def test_training_and_prediction_give_the_same_numbers_with_the_cache_and_without(
    dacon: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(tmp_path / "cache"))
    scores = ["train_loss", "val_loss", "val_acc", "val_macro_f1"]
    results, logits = [], []
    for mode in ("off", "auto", "auto"):  # no cache, the cache being written, the cache read
        out = tmp_path / f"runs_{len(results)}"
        shown = artkit("train", dacon, *TINY, "--epochs", "2", "--cache", mode, "--out", out).output
        assert ("decode cache:" in shown) == (mode == "auto")
        results.append(pd.read_csv(out / "train" / "results.csv")[scores])
        sub = tmp_path / f"sub_{len(logits)}.csv"
        artkit("predict", out / "train" / "best.pt", dacon, "--cache", mode, "-o", sub)
        with np.load(sub.with_suffix(".npz")) as z:
            logits.append(z["logits"])
    pd.testing.assert_frame_equal(results[0], results[1])
    pd.testing.assert_frame_equal(results[0], results[2])
    assert np.array_equal(logits[0], logits[1]) and np.array_equal(logits[0], logits[2])


def test_a_loader_process_stamps_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from artkit.data import decode_cache

    paths = paintings(tmp_path / "img", n=3)
    stamped: list[str] = []
    real = decode_cache.file_stamp
    monkeypatch.setattr(decode_cache, "file_stamp", lambda p: stamped.append(p) or real(p))
    table = ImageTable(paths, None, create_transform("none", 16, "val"), cache=DecodeCache(tmp_path / "cache"))
    first = batches(table, range(3))
    again = batches(table, range(3))  # a second epoch in the same process
    assert sorted(stamped) == sorted(paths) and torch.equal(first, again)


def test_a_fixed_view_is_read_from_the_cache_without_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from artkit.data import dataset

    paths = paintings(tmp_path / "img", n=3)
    cache = DecodeCache(tmp_path / "cache")

    def table() -> ImageTable:
        return ImageTable(paths, None, create_transform("crop", 16, "predict"), 16, cache=cache)

    first = batches(table(), range(3))
    stored = records(cache.folder)
    assert [tuple(r[2:]) for r in stored] == [(16, 16, 3)] * 3  # the views, not the images

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(dataset, "load_image", no_decoding)
    assert torch.equal(batches(table(), range(3)), first) and first.dtype == torch.uint8


def test_light_training_reads_its_resize_from_the_cache_and_runs_only_the_random_operations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from artkit.data import dataset

    paths = paintings(tmp_path / "img", n=3)
    cache = DecodeCache(tmp_path / "cache")

    def table() -> ImageTable:
        return ImageTable(paths, None, create_transform("light", 16, "train"), 16, cache=cache)

    keys = [(i, 7 + i) for i in range(3)]
    first = batches(table(), keys)
    assert [tuple(r[2:]) for r in records(cache.folder)] == [(16, 16, 3)] * 3  # the resized images
    monkeypatch.setattr(dataset, "load_image", lambda *_a, **_k: pytest.fail("decoded again"))
    again = table()
    assert [type(op).__name__ for op in again.rest.transforms][:1] == ["HorizontalFlip"]  # no resize left to run
    assert torch.equal(batches(again, keys), first)
    assert not torch.equal(batches(again, [(i, 8 + i) for i in range(3)]), first)  # still random per seed
    assert torch.equal(batches(pickle.loads(pickle.dumps(again)), keys), first)  # as a loader process gets it


def test_a_view_is_named_by_its_operations_and_their_parameters():
    def key(preset: str, size: int, stage: str) -> str:
        fixed, _ = split_fixed(create_transform(preset, size, stage))
        return "" if fixed is None else view_key(fixed)

    assert key("crop", 16, "train") == ""  # random crops are made anew every time
    assert key("light", 16, "train") == key("light", 16, "val")  # light training starts with validation's resize
    assert key("crop", 16, "predict") == key("crop", 16, "predict")  # the same pipeline built twice
    assert key("crop", 16, "val") != key("crop", 16, "predict")  # the centre quarter first
    assert key("crop", 16, "predict") != key("crop", 24, "predict")
    assert key("none", 16, "val") == key("none", 16, "predict")  # the same operations share their entries
