"""Hostile inputs and faults, one test per case of docs/reliability.md: each asserts the message, the exit code,
and that no input or earlier output changed (hashes before and after)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from artkit.writer import save_npz

from helpers import TINY, artkit, make_dacon, random_checkpoint, sha256_tree

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny dataset and a 1-epoch run on it (shared by the tests that need a checkpoint)."""
    root = tmp_path_factory.mktemp("trained")
    data = make_dacon(root / "data")
    artkit("train", data, *TINY, "--epochs", "1", "--out", root / "runs")
    return data, root / "runs" / "train"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTKIT_CACHE_DIR", str(tmp_path / "cache"))


def refused(*args, message: str) -> str:
    """Run the CLI; assert exit code 2, ``message`` in the output and no traceback."""
    r = artkit(*args, ok=False)
    text = " ".join(r.output.split())
    assert r.exit_code == 2, (args, r.output, r.exception)
    assert message in text, (message, r.output)
    assert "Traceback" not in r.output
    return text


def edited_checkpoint(run: Path, out: Path, edit) -> Path:
    ckpt = torch.load(run / "best.pt", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, out)
    return out


# 1 ------------------------------------------------------------------------------------------ non-finite models


def test_1_a_diverging_run_never_makes_a_best_checkpoint(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    before = sha256_tree(data)
    text = refused(
        "train", data, *TINY, "--lr", "1e4", "--epochs", "3", "--out", tmp_path / "runs", message="the loss became nan"
    )
    assert "--resume" not in text  # resuming with the same options would only diverge again
    run = tmp_path / "runs" / "train"
    if (run / "best.pt").exists():  # a best epoch, if any, had finite validation
        assert np.isfinite(torch.load(run / "best.pt", weights_only=True)["metrics"]["val_loss"])
    assert sha256_tree(data) == before


@pytest.mark.slow
def test_1_non_finite_logits_are_refused_by_predict_eval_and_ensemble(trained, tmp_path: Path):
    data, run = trained
    before = sha256_tree(data)

    def nan_weights(ckpt):
        ckpt["state_dict"] = {
            k: v.float().fill_(float("nan")) if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()
        }

    def zero_std(ckpt):
        ckpt["std"] = [0.0, 0.0, 0.0]

    for name, edit, why in (
        ("nan.pt", nan_weights, "gives non-finite (NaN or inf) logits"),
        ("std0.pt", zero_std, "has an invalid normalisation"),  # refused by the schema before any logits
    ):
        bad = edited_checkpoint(run, tmp_path / name, edit)
        refused("predict", bad, data, "-o", tmp_path / "s.csv", message=f"{bad} {why}")
        refused("eval", bad, "--data", data, "--out", tmp_path / "ev", message=why)
        refused("ensemble", run / "best.pt", bad, "--data", data, "-o", tmp_path / "e.csv", message=str(bad))
        assert not (tmp_path / "s.csv").exists() and not (tmp_path / "e.csv").exists()
    logits = tmp_path / "nan.npz"
    test_ids = pd.read_csv(data / "test.csv", dtype=str)["id"].tolist()
    save_npz(
        logits,
        ids=np.array(test_ids),
        classes=np.array(torch.load(run / "best.pt")["classes"]),
        logits=np.full((len(test_ids), 3), np.nan, np.float32),
    )
    refused("ensemble", logits, "--data", data, "-o", tmp_path / "e.csv", message=f"{logits} gives non-finite")
    assert sha256_tree(data) == before


# 2 ------------------------------------------------------------------------------------------ numeric ranges


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clip-grad", "-1"], "--clip-grad must be > 0 (got -1)"),
        (["--img-size", "0"], "--img-size must be >= 8"),
        (["--folds", "0"], "--folds must be >= 2 (got 0)"),
        (["--min-lr", "0.1", "--lr", "0.01"], "--min-lr (0.1)"),
        (["--weight-decay", "-0.1"], "--weight-decay must be >= 0"),
        (["--warmup-epochs", "-1"], "--warmup-epochs"),
        (["--drop-path-rate", "-0.1"], "--drop-path-rate must be between 0 and 1"),
        (["--momentum", "-0.5"], "--momentum must be between 0 and 1"),
        (["--workers", "-1"], "--workers must be >= 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--full", "--folds", "3"], "--full trains one model on every row; it cannot be combined with --folds"),
    ],
)
def test_2_numeric_options_are_range_checked_before_any_work(args, message, tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    refused("train", data, *TINY, *args, "--out", tmp_path / "runs", message=message)
    assert not (tmp_path / "runs").exists()


def test_2_ensemble_weights_must_be_finite(trained, tmp_path: Path):
    data, run = trained
    refused(
        "ensemble",
        run / "best.pt",
        run / "best.pt",
        "--data",
        data,
        "--weights",
        "nan,1",
        "-o",
        tmp_path / "e.csv",
        message="--weights must be a finite number",
    )


# 3 ------------------------------------------------------------------------------------------ label spellings


@pytest.mark.slow
def test_3_labels_with_surrounding_spaces_are_one_class_and_spellings_are_reported(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    train = pd.read_csv(data / "train.csv", dtype=str)
    train.loc[train.index[:3], "artist"] = train["artist"].iloc[:3] + "  "
    train.to_csv(data / "train.csv", index=False)
    before = sha256_tree(data)
    r = artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs")
    assert "3 label(s) of train.csv had spaces around them, stripped" in " ".join(r.output.split())
    assert len(torch.load(tmp_path / "runs" / "train" / "best.pt", weights_only=True)["classes"]) == 3
    r = artkit("eda", data, "--out", tmp_path / "eda", "--workers", "1")
    assert "near-identical class names" in r.output  # 'Albrecht Dürer' and 'Albrecht Du rer'
    r = artkit("clean", data, "--out", tmp_path / "clean", "--workers", "1")
    assert "near-identical class names 'Albrecht Du rer' and 'Albrecht Dürer'" in " ".join(r.output.split())
    assert sha256_tree(data) == before


# 4 ------------------------------------------------------------------------------------------ folds


def test_4_small_classes_are_named_and_too_many_folds_fail_at_once(tmp_path: Path):
    data = make_dacon(tmp_path / "data", per_class=(8, 2, 10))
    r = artkit("train", data, *TINY, "--epochs", "1", "--folds", "3", "--fold", "0", "--out", tmp_path / "runs")
    assert (
        "1 class(es) have fewer rows than --folds 3, so some folds train without them: Albrecht Du rer (2)"
        in " ".join(r.output.split())
    )
    refused(
        "train",
        data,
        *TINY,
        "--folds",
        "50",
        "--out",
        tmp_path / "big",
        message="--folds 50 is more than the 20 training rows",
    )
    assert not (tmp_path / "big").exists() or not any((tmp_path / "big").iterdir())


# 5 ------------------------------------------------------------------------------------------ own output folders


@pytest.mark.slow
def test_5_artkit_output_folders_are_never_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "folders"
    for cls, n in (("cat", 5), ("dog", 5)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (40, 40), (200 * (cls == "cat"), 90, 30 + 10 * i)).save(root / cls / f"{i}.png")
    monkeypatch.chdir(root)
    artkit("eda", ".", "--workers", "1")
    artkit("clean", ".", "--workers", "1")
    r = artkit("train", ".", *TINY, "--epochs", "1")
    assert "skipped artkit output folder(s), not classes: clean, eda" in " ".join(r.output.split())
    r = artkit("train", ".", *TINY, "--epochs", "1")  # now runs/ is there too
    assert "clean, eda, runs" in " ".join(r.output.split())
    assert torch.load(root / "runs" / "train2" / "best.pt", weights_only=True)["classes"] == ["cat", "dog"]


# 6 ------------------------------------------------------------------------------------------ scan cache


def test_6_a_file_rewritten_with_the_same_size_and_mtime_is_scanned_again(tmp_path: Path):
    from artkit.qa.scan import scan_images

    path = tmp_path / "a.bmp"  # BMP: the same dimensions give the same byte size
    Image.new("RGB", (64, 48), (250, 10, 10)).save(path)
    stat = path.stat()
    first = scan_images([str(path)], workers=1, cache_folder=tmp_path / "cache").table.iloc[0]
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    second = scan_images([str(path)], workers=1, cache_folder=tmp_path / "cache")
    assert second.cache_hits == 0 and second.table.iloc[0]["file_md5"] != first["file_md5"]


# 7 ------------------------------------------------------------------------------------------ demo folder


def test_7_demo_refuses_a_folder_it_did_not_make(tmp_path: Path):
    from artkit.demo import claim_demo_folder

    mine = make_dacon(tmp_path / "mine" / "data")
    before = sha256_tree(tmp_path / "mine")
    refused("demo", "--out", tmp_path / "mine", message="already holds files that artkit demo did not write")
    assert sha256_tree(tmp_path / "mine") == before and mine.is_dir()
    claim_demo_folder(tmp_path / "fresh")  # new: claimed and marked ...
    (tmp_path / "fresh" / "data").mkdir()
    claim_demo_folder(tmp_path / "fresh")  # ... so a later demo may write into it again


# 8 ------------------------------------------------------------------------------------------ outputs over inputs


def test_8_outputs_never_overwrite_inputs(trained, tmp_path: Path):
    data, run = trained
    artkit("predict", run / "best.pt", data, "-o", tmp_path / "p.csv")
    before = {**sha256_tree(data), **sha256_tree(run), "p.npz": sha256_tree(tmp_path)["p.npz"]}
    refused("predict", run / "best.pt", data, "-o", data / "test.csv", message="is also an input")
    refused(
        "predict",
        run / "best.pt",
        data,
        "-o",
        tmp_path / "s.csv",
        "--logits",
        run / "best.pt",
        message="is also an input",
    )
    refused("ensemble", tmp_path / "p.npz", "--data", data, "-o", tmp_path / "p.csv", message="is also an input")
    refused("ensemble", run / "best.pt", "--data", data, "-o", run / "best.pt", message="is also an input")
    after = {**sha256_tree(data), **sha256_tree(run), "p.npz": sha256_tree(tmp_path)["p.npz"]}
    assert after == before


# 9 ------------------------------------------------------------------------------------------ run names


def test_9_run_names_are_one_path_component(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    refused(
        "train",
        data,
        *TINY,
        "--out",
        tmp_path / "a" / "runs",
        "--name",
        "../../x",
        message="--name must be a plain folder name",
    )
    assert not (tmp_path / "x").exists() and not (tmp_path / "a").exists()


# 10 ----------------------------------------------------------------------------------------- atomic outputs


def test_10_outputs_have_ordinary_permissions_and_stale_temp_files_go(trained, tmp_path: Path):
    _, run = trained
    plain = tmp_path / "plain"
    plain.write_text("x")
    for name in ("best.pt", "last.pt", "results.csv", "config.yaml", "split.csv"):
        assert (run / name).stat().st_mode & 0o777 == plain.stat().st_mode & 0o777, name
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(run), str(copy)], check=True)
    stale = copy / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    artkit("train", "--resume", copy, "--epochs", "2")
    assert not stale.exists() and not list(copy.glob(".*.tmp"))


def test_10_a_failed_fold_start_leaves_no_folders(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    refused(
        "train",
        data,
        *TINY,
        "--model",
        "test_vit",
        "--layer-decay",
        "0.8",
        "--img-size",
        "33",
        "--folds",
        "2",
        "--out",
        tmp_path / "runs",
        message="",
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# 11 ----------------------------------------------------------------------------------------- broken files


def test_11_broken_checkpoints_and_logits_are_one_message(trained, tmp_path: Path):
    data, run = trained
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    (tmp_path / "table.pt").write_text("id,img_path\n1,a.jpg\n")
    cases = [
        (tmp_path / "empty.pt", "is empty (0 bytes), not a checkpoint"),
        (tmp_path / "random.pt", "is not a PyTorch checkpoint or is truncated"),
        (tmp_path / "table.pt", "is not a PyTorch checkpoint or is truncated"),
        (edited_checkpoint(run, tmp_path / "noclasses.pt", lambda c: c.pop("classes")), "has an invalid class list"),
        (
            edited_checkpoint(run, tmp_path / "more.pt", lambda c: c["classes"].append("Extra")),
            "do not fit a test_efficientnet with 4 classes",
        ),
        (
            edited_checkpoint(run, tmp_path / "size0.pt", lambda c: c.update(img_size=0)),
            "has an invalid 'img_size' (0; a whole number of pixels from 8 to 4096)",
        ),
    ]
    for path, message in cases:
        refused("predict", path, data, "-o", tmp_path / "s.csv", message=message)
        refused("eval", path, "--data", data, "--out", tmp_path / "ev", message=message)
    (tmp_path / "w.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    refused(
        "train",
        data,
        *TINY,
        "--weights",
        tmp_path / "w.safetensors",
        "--out",
        tmp_path / "r",
        message="is not a readable .safetensors file",
    )
    test_ids = pd.read_csv(data / "test.csv", dtype=str)["id"].tolist()
    save_npz(
        tmp_path / "cols.npz",
        ids=np.array(test_ids),
        classes=np.array(["a", "b", "c"]),
        logits=np.zeros((len(test_ids), 5), np.float32),
    )
    refused(
        "ensemble",
        tmp_path / "cols.npz",
        "--data",
        data,
        "-o",
        tmp_path / "e.csv",
        message=f"holds logits of shape ({len(test_ids)}, 5) for {len(test_ids)} ids and 3 classes",
    )
    assert not (tmp_path / "s.csv").exists()


# 12 ----------------------------------------------------------------------------------------- huge images


def bomb_png(path: Path, side: int = 30000) -> Path:
    """A PNG whose header claims side x side pixels (900 MP at 30000): what a decompression bomb looks like to
    a reader. Its data is cut short; the header is all Pillow reads before refusing it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )
    return path


def test_12_a_decompression_bomb_is_an_issue_of_its_own_in_eda_and_clean(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    bomb_png(data / "train" / "0003.jpg")
    before = sha256_tree(data)
    r = artkit("eda", data, "--out", tmp_path / "eda", "--workers", "1")
    assert "train: too-large files" in r.output
    artkit("clean", data, "--out", tmp_path / "clean", "--workers", "1")
    issues = pd.read_csv(tmp_path / "clean" / "issues.csv", dtype=str)
    row = issues[issues["issue"] == "too-large"]
    assert row["id"].tolist() == ["3"] and row["action"].tolist() == ["drop"]
    assert sha256_tree(data) == before


def test_12_large_png_is_reduced_while_decoding_not_copied_at_full_size(tmp_path: Path):
    big = tmp_path / "big.png"
    w, h = 6000, 4000
    gradient = np.broadcast_to(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, w, 3))
    Image.fromarray(np.ascontiguousarray(gradient)).save(big, compress_level=1)
    code = f"""
import resource, sys
sys.path.insert(0, {str(SRC)!r})
from artkit.data.images import load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
img = load_image({str(big)!r}, min_size=256)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(img.size[0], img.size[1], (after - before) * 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    width, height, peak = int(out[0]), int(out[1]), int(out[2])
    assert min(width, height) >= 256 and width < w // 4  # reduced, still at least the size asked for
    raw = w * h * 3
    assert peak < 1.5 * raw, f"peak memory grew by {peak / raw:.2f}x the decoded image"


# 13 ----------------------------------------------------------------------------------------- unwritable outputs


def test_13_an_output_folder_that_cannot_be_written_is_one_line(trained, tmp_path: Path):
    data, run = trained
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    before = sha256_tree(data)
    refused("train", data, *TINY, "--out", blocker / "runs", message="cannot")
    refused("predict", run / "best.pt", data, "-o", blocker / "s.csv", message="cannot")
    refused("eval", run / "best.pt", "--out", blocker / "ev", message="cannot create the folder")
    refused("eda", data, "--out", blocker / "eda", "--workers", "1", message="cannot create the folder")
    refused("clean", data, "--out", blocker / "clean", "--workers", "1", message="cannot create the folder")
    refused("ensemble", run / "best.pt", "--data", data, "-o", blocker / "e.csv", message="cannot")
    assert sha256_tree(data) == before


@pytest.mark.slow
def test_13_a_full_disk_keeps_last_pt_and_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import errno

    import artkit.engine.checkpoint as checkpoint

    data = make_dacon(tmp_path / "data")
    real, calls = checkpoint.save_torch, []

    def disk_full_in_epoch_2(obj, path):
        calls.append(Path(path).name)
        if obj["epoch"] == 2 and Path(path).name == "last.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(obj, path)

    from artkit.writer import _write_error

    def raising(obj, path):
        try:
            disk_full_in_epoch_2(obj, path)
        except OSError as exc:
            raise _write_error(Path(path), exc) from None

    monkeypatch.setattr(checkpoint, "save_torch", raising)
    text = refused("train", data, *TINY, "--epochs", "3", "--out", tmp_path / "runs", message="No space left on device")
    run = tmp_path / "runs" / "train"
    assert f"continue with: artkit train --resume {run}" in text
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(checkpoint, "save_torch", real)
    artkit("train", "--resume", run)
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 3


# 14 ----------------------------------------------------------------------------------------- config values


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("epochs: ten", "'epochs' in"),
        ("epochs: 1.7", "'epochs' in"),
        ("model: [a, b]", "'model' in"),
        ('pretrained: "no"', "'pretrained' in"),
    ],
)
def test_14_config_values_of_the_wrong_type_name_the_key(line, message, tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    (tmp_path / "c.yaml").write_text(line + "\n", encoding="utf-8")
    refused("train", data, "--config", tmp_path / "c.yaml", "--out", tmp_path / "runs", message=message)


def test_14_numeric_strings_are_numbers(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    (tmp_path / "c.yaml").write_text("lr: 1e-4\nepochs: 1\n", encoding="utf-8")
    artkit(
        "train",
        data,
        *[a for a in TINY if a not in ("--lr", "0.01")],
        "--config",
        tmp_path / "c.yaml",
        "--out",
        tmp_path / "runs",
    )
    assert "lr: 0.0001" in (tmp_path / "runs" / "train" / "config.yaml").read_text(encoding="utf-8")


# 15 ----------------------------------------------------------------------------------------- fixed-size models


def test_15_multi_scale_tta_is_refused_for_fixed_size_models(trained, tmp_path: Path):
    data, _ = trained
    random_checkpoint(tmp_path / "vit.pt", "vit_tiny_patch16_224", img_size=224)
    refused(
        "predict",
        tmp_path / "vit.pt",
        data,
        "--tta",
        "multi-scale",
        "-o",
        tmp_path / "s.csv",
        message="takes a fixed input size (224 px), so --tta multi-scale does not apply",
    )


# 16 ----------------------------------------------------------------------------------------- paths outside


def test_16_paths_outside_the_data_folder_are_counted_and_never_copied(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    secret = tmp_path / "secret.txt"
    token = "SECRET-TOKEN-7f3a9c"
    secret.write_text(f"password={token}\n")
    train = pd.read_csv(data / "train.csv", dtype=str)
    train.loc[len(train)] = ["999", "../secret.txt", train["artist"].iloc[0]]
    train.to_csv(data / "train.csv", index=False)
    r = artkit("eda", data, "--out", tmp_path / "eda", "--workers", "1")
    assert "outside" in r.output
    assert json.loads((tmp_path / "eda" / "eda.json").read_text())["paths"] == {"outside": 1, "example": str(secret)}
    artkit("clean", data, "--out", tmp_path / "clean", "--workers", "1")
    notes = json.loads((tmp_path / "clean" / "clean.json").read_text())["notes"]
    assert f"1 image path(s) point outside the data folder, e.g. {secret}" in notes
    for folder in (tmp_path / "eda", tmp_path / "clean", tmp_path / "cache"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
