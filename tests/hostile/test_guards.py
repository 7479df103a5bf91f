"""The reader, writer and health guards as units: special files, size caps, YAML alias bombs, refused pickles,
the checkpoint schema (with Hypothesis), what an output may replace, a full disk, a resume that fails, and the
checks that say a model learned nothing."""

from __future__ import annotations

import contextlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artkit.errors import ArtkitError
from artkit.health import learning_warning, submission_warning
from artkit.models.meta import check_checkpoint
from artkit.reader import load_torch, load_yaml, read_bytes, read_csv_text
from artkit.writer import atomic_write, refuse_clobber, save_torch, write_text

from helpers import TINY, artkit, make_dacon, sha256_tree

# ------------------------------------------------------------------------------------------ one way in


def test_special_files_are_refused_before_a_byte_is_read(tmp_path: Path):
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "nowhere")
    for name, message in (
        ("fifo.csv", "is a FIFO"),
        ("zero.csv", "is a character device (through a symbolic link)"),
        ("dangling.csv", "broken symbolic link"),
    ):
        with pytest.raises(ArtkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_csv_text(tmp_path / name)


def test_sizes_are_capped_before_reading(tmp_path: Path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(2 << 20)  # a sparse 2 MiB file: more than a config may be
    with pytest.raises(ArtkitError, match="more than the 1 MiB artkit reads for a config file"):
        load_yaml(big)
    assert read_bytes(big, "file") == b"\0" * (2 << 20)


def test_a_yaml_alias_bomb_is_a_short_error(tmp_path: Path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert bomb.stat().st_size < 400
    with pytest.raises(ArtkitError) as info:
        load_yaml(bomb)
    assert "through YAML aliases" in str(info.value) and len(str(info.value)) < 300
    r = artkit("train", tmp_path, "--config", bomb, ok=False)
    assert r.exit_code == 2 and len(r.output) < 600, r.output


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_with_code_is_named_as_refused_for_safety(tmp_path: Path):
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Evil()))
    wrapped = tmp_path / "zip.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Evil()}, wrapped)
    for path in (raw, wrapped):
        with pytest.raises(ArtkitError, match="refuses to load for safety"):
            load_torch(path)
        r = artkit("weights", "show", path, ok=False)
        assert r.exit_code == 2 and "for safety" in r.output and "truncated" not in r.output


_value = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5), st.lists(st.floats(), max_size=4)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    model=_value,
    classes=st.one_of(_value, st.lists(st.text(max_size=3), max_size=4)),
    img_size=_value,
    mean=_value,
    std=_value,
)
def test_the_checkpoint_schema_accepts_only_sane_metadata(model, classes, img_size, mean, std):
    ckpt = {
        "model": model,
        "classes": classes,
        "img_size": img_size,
        "mean": mean,
        "std": std,
        "state_dict": {"w": torch.zeros(1)},
    }
    try:
        check_checkpoint(ckpt, "x.pt")
    except ArtkitError as exc:
        assert str(exc).startswith("x.pt has")
        return
    assert isinstance(model, str) and isinstance(classes, list) and len(set(classes)) == len(classes) >= 2
    assert isinstance(img_size, int) and 8 <= img_size <= 4096
    assert all(np.isfinite(mean)) and all(0.001 <= s <= 10 for s in std)


# ------------------------------------------------------------------------------------------ one way out


def test_an_output_replaces_only_its_own_kind(tmp_path: Path):
    users = tmp_path / "notes.csv"
    users.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ArtkitError, match="is not a submission"):
        refuse_clobber(users, "submission")
    old = tmp_path / "old_submission.csv"
    old.write_text("id,artist\n1,x\n")
    refuse_clobber(old, "submission")  # an earlier submission: replaced without a word
    with pytest.raises(ArtkitError, match="is also an input"):
        refuse_clobber(old, "submission", inputs=[tmp_path / "." / "old_submission.csv"])
    ckpt = tmp_path / "best.pt"
    torch.save({"format": "artkit-checkpoint"}, ckpt)
    with pytest.raises(ArtkitError, match="is not an artkit weights file"):
        refuse_clobber(ckpt, "weights")
    torch.save({"format": "artkit-weights"}, tmp_path / "w.pt")
    refuse_clobber(tmp_path / "w.pt", "weights")


def test_a_symlinked_output_is_written_through(tmp_path: Path):
    real, link = tmp_path / "real.txt", tmp_path / "link.txt"
    real.write_text("old")
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ArtkitError, match="not a regular file"):
        write_text(tmp_path / "fifo", "x")


def test_a_full_disk_in_torch_save_is_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def failing_save(obj, fh):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(torch, "save", failing_save)
    target = tmp_path / "last.pt"
    target.write_bytes(b"earlier")
    with pytest.raises(ArtkitError, match=r"cannot write .*last\.pt: disk full\?"):
        save_torch({"a": 1}, target)
    assert target.read_bytes() == b"earlier" and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_other_runtime_errors_inside_a_write_are_not_disguised(tmp_path: Path):
    with pytest.raises(RuntimeError, match="shape mismatch"), atomic_write(tmp_path / "x") as fh:
        fh.write(b"1")
        raise RuntimeError("shape mismatch")


def test_a_kfold_fold_name_cannot_escape_the_out_folder(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    for name in ("../../escape", str(tmp_path / "abs")):
        r = artkit(
            "train", data, *TINY, "--folds", "2", "--fold", "0", "--out", tmp_path / "runs", "--name", name, ok=False
        )
        assert r.exit_code == 2 and "--name must be a plain folder name" in r.output, r.output
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "abs").exists()


def test_a_resume_that_fails_leaves_the_run_record_as_it_was(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs")
    run = tmp_path / "runs" / "train"
    data.rename(tmp_path / "moved")  # the data moved: the resume cannot go on
    before = sha256_tree(run)
    r = artkit("train", "--resume", run, "--epochs", "2", ok=False)
    assert r.exit_code == 2, r.output
    assert sha256_tree(run) == before  # summary.json kept, config.yaml not rewritten


# ------------------------------------------------------------------------------------------ a run that learns nothing


def test_learning_warning_names_a_collapse_and_chance_level():
    targets = np.repeat(np.arange(5), 4)
    assert "one class (c0) takes 100%" in learning_warning(np.zeros(20, int), targets, [f"c{i}" for i in range(5)], 0.1)
    assert "near chance" in learning_warning(np.roll(targets, 3), targets, [f"c{i}" for i in range(5)], 0.2)
    assert learning_warning(targets, targets, [f"c{i}" for i in range(5)], 1.0) is None
    assert learning_warning(np.zeros(4, int), targets[:4], ["a", "b"], 0.0) is None  # too few to judge


def test_submission_warning_when_one_class_takes_most_rows():
    assert "one class (a) takes 80%" in submission_warning(["a"] * 8 + ["b", "c"], 3)
    assert submission_warning(["a", "b", "c"] * 4, 3) is None


@pytest.mark.slow
def test_a_run_that_learns_nothing_says_so_everywhere(tmp_path: Path):
    from artkit.models.factory import create_model

    data = make_dacon(tmp_path / "data", per_class=(20, 20, 20), n_test=12)
    net = create_model("test_efficientnet", 3)
    state = net.state_dict()
    state["classifier.bias"] = torch.tensor([50.0, 0.0, 0.0])  # every image is the first class ...
    torch.save(state, tmp_path / "stuck.pt")
    runs = tmp_path / "runs"
    args = ["--epochs", "3", "--lr", "1e-12", "--min-lr", "0", "--no-ema", "--out", runs]  # ... and stays so
    r = artkit("train", data, *TINY, *args, "--weights", tmp_path / "stuck.pt")
    text = " ".join(r.output.split())
    assert "warning:" in text and "of the validation predictions" in text and "learned nothing" in text, r.output
    assert "learned nothing" in text.split("done:")[1]  # again under the run's result
    assert "validation predictions" in (runs / "train" / "summary.json").read_text()
    assert "degenerate" in artkit("runs", runs).output
    r = artkit("predict", runs / "train" / "best.pt", data, "-o", tmp_path / "s.csv", "--workers", "0")
    assert "takes 100% of the 12 rows" in " ".join(r.output.split()), r.output
    r = artkit("ensemble", runs / "train" / "best.pt", "--data", data, "-o", tmp_path / "e.csv", "--workers", "0")
    assert "takes 100% of the 12 rows" in " ".join(r.output.split()), r.output


def test_a_random_init_weights_file_trains_from_scratch(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    artkit("weights", "save", "test_efficientnet", "--no-pretrained", "-o", tmp_path / "w.pt")
    args = [a for a in TINY if a != "--no-pretrained"]
    r = artkit("train", data, *args, "--epochs", "1", "--out", tmp_path / "runs", "--weights", tmp_path / "w.pt")
    text = " ".join(r.output.split())
    assert "holds a random init" in text and "training from scratch" in text, r.output
    config = (tmp_path / "runs" / "train" / "config.yaml").read_text()
    assert "pretrained: false" in config and "weights: null" in config


# ------------------------------------------------------------------------------------------ no partial truth


@pytest.fixture(scope="module")
def kfold_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("kfold")
    data = make_dacon(root / "data")
    artkit("train", data, *TINY, "--epochs", "1", "--folds", "2", "--out", root / "runs", "--name", "kf")
    return data, root / "runs" / "kf"


def test_a_kfold_run_missing_a_folds_best_pt_is_not_ensembled_as_fewer_folds(kfold_run, tmp_path: Path):
    import shutil

    data, run = kfold_run
    broken = tmp_path / "kf"
    shutil.copytree(run, broken)
    (broken / "fold1" / "best.pt").unlink()
    r = artkit("ensemble", broken, "--data", data, "-o", tmp_path / "e.csv", "--workers", "0", ok=False)
    assert r.exit_code == 2 and "is a 2-fold run, but fold1 has no best.pt" in " ".join(r.output.split()), r.output
    assert not (tmp_path / "e.csv").exists()


def test_fit_weights_refuses_nan_in_oof(kfold_run, tmp_path: Path):
    import shutil

    import pandas as pd

    data, run = kfold_run
    other = tmp_path / "kf2"
    shutil.copytree(run, other)
    oof = pd.read_csv(other / "oof.csv", dtype=str, keep_default_na=False)
    oof.iloc[0, 2] = "nan"
    oof.to_csv(other / "oof.csv", index=False)
    r = artkit(
        "ensemble", run, other, "--fit-weights", "--data", data, "-o", tmp_path / "e.csv", "--workers", "0", ok=False
    )
    assert r.exit_code == 2 and "non-numeric, NaN or inf" in r.output, r.output


def test_clean_fix_to_a_new_label_needs_allow_new_class(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    (tmp_path / "fix.csv").write_text("id,label\n0,Vincent van Gohg\n", encoding="utf-8")
    r = artkit("clean", data, "--fix", tmp_path / "fix.csv", "--out", tmp_path / "c", "--workers", "1", ok=False)
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "did you mean 'Vincent van Gogh'?" in text and "--allow-new-class" in text, r.output
    r = artkit(
        "clean", data, "--fix", tmp_path / "fix.csv", "--allow-new-class", "--out", tmp_path / "c", "--workers", "1"
    )
    assert "Vincent van Gohg" in (tmp_path / "c" / "train_clean.csv").read_text(encoding="utf-8")


def test_weights_that_leave_layers_random_say_which(tmp_path: Path):
    from artkit.models.factory import create_model

    data = make_dacon(tmp_path / "data")
    state = create_model("test_efficientnet", 3).state_dict()
    dropped = [k for k in state if k.startswith("blocks.1")]
    for k in dropped:
        del state[k]
    torch.save(state, tmp_path / "partial.pt")
    r = artkit("train", data, *TINY, "--epochs", "1", "--out", tmp_path / "runs", "--weights", tmp_path / "partial.pt")
    text = " ".join(r.output.split())
    assert f"{len(dropped)} of the model's" in text and "start random (layers: blocks.1" in text, r.output


@pytest.mark.slow
def test_runs_shows_a_live_run_as_running_and_damaged_files_as_damaged(tmp_path: Path):
    import json
    import socket

    data = make_dacon(tmp_path / "data")
    runs = tmp_path / "runs"
    artkit("train", data, *TINY, "--epochs", "2", "--out", runs, "--name", "live")
    live = runs / "live"
    assert not (live / ".running").exists()  # a finished run leaves no mark
    (live / "summary.json").unlink()  # as if still training, with this process as its trainer
    (live / ".running").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    artkit("train", data, *TINY, "--epochs", "1", "--out", runs, "--name", "broken")
    (runs / "broken" / "results.csv").write_text("epoch,lr\nten,x\n")
    r = artkit("runs", runs)
    rows = {line.split()[0]: line for line in r.output.splitlines() if line.strip().startswith(("live", "broken"))}
    assert "running" in rows["live"] and "0." in rows["live"], r.output  # with its best score so far
    assert "damaged" in rows["broken"] and "results.csv is damaged" in " ".join(r.output.split()), r.output
    (live / ".running").write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))  # a dead pid
    assert "interrupted" in artkit("runs", runs).output
    # eval of a run whose record is damaged: one message naming the file, no traceback
    (live / "split.csv").write_bytes(b"\x00\xff garbage\nnot,a,split\n")
    r = artkit("eval", live / "best.pt", ok=False)
    assert r.exit_code == 2 and "split.csv" in r.output and "Traceback" not in r.output, r.output
    (live / "config.yaml").write_text("epochs: [unclosed\n")
    (live / "summary.json").write_text("{truncated")
    r = artkit("eval", live / "best.pt", "--data", data, "--out", tmp_path / "ev")  # the checkpoint is enough
    assert "macro-F1" in r.output


_yaml_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(
    mapping=st.dictionaries(
        st.sampled_from(["epochs", "lr", "model", "aug", "pretrained", "logger", "bogus", "time", "img_size", "name"]),
        _yaml_value,
        max_size=4,
    )
)
def test_a_config_mapping_is_a_valid_config_or_one_artkit_error(mapping):
    from artkit.engine.config import TrainConfig
    from artkit.options import typed_mapping

    try:
        values = typed_mapping(TrainConfig, mapping, "x.yaml")
    except ArtkitError as exc:
        assert "x.yaml" in str(exc) or "unknown" in str(exc)
        return
    TrainConfig(**values)  # every accepted mapping builds a config


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_any_text_as_a_csv_is_a_table_or_one_artkit_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(ArtkitError):  # a table, or one clear message: never another exception
        read_csv_text(path)


def test_a_mapped_file_is_its_bytes_and_anything_else_is_one_error(tmp_path: Path):
    from artkit.reader import map_file, read_from

    (tmp_path / "ok.pack").write_bytes(b"0123456789")
    assert bytes(map_file(tmp_path / "ok.pack")) == b"0123456789"
    assert read_from(tmp_path / "ok.pack", 4) == b"456789"
    (tmp_path / "empty.pack").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo.pack")
    (tmp_path / "link.pack").symlink_to("/dev/zero")
    for name in ("empty", "fifo", "link", "absent"):
        with pytest.raises(ArtkitError):
            map_file(tmp_path / f"{name}.pack")


def test_an_append_lock_is_held_by_one_opener_and_never_follows_a_link_or_opens_a_fifo(tmp_path: Path):
    from artkit.writer import append_bytes, open_locked_append

    first = open_locked_append(tmp_path / "a.idx", create=True)
    assert first is not None and open_locked_append(tmp_path / "a.idx", create=True) is None  # it exists
    assert open_locked_append(tmp_path / "a.idx", create=False) is None  # held
    append_bytes(first, b"abc")
    first.close()
    again = open_locked_append(tmp_path / "a.idx", create=False)  # released with the file
    append_bytes(again, b"de")
    again.close()
    assert (tmp_path / "a.idx").read_bytes() == b"abcde"
    (tmp_path / "victim").write_bytes(b"keep")
    (tmp_path / "link.idx").symlink_to(tmp_path / "victim")
    os.mkfifo(tmp_path / "fifo.idx")
    for name in ("link.idx", "fifo.idx"):
        with pytest.raises(OSError):
            open_locked_append(tmp_path / name, create=False)
    assert (tmp_path / "victim").read_bytes() == b"keep"
    assert open_locked_append(tmp_path / "absent.idx", create=False) is None  # never made by a reuse
    assert not (tmp_path / "absent.idx").exists()
