"""Every subcommand against every hostile input that applies to it: special files (a FIFO, a link to /dev/zero) as
each input, each input as an output, a symbolic link as the output, markup in class names, malformed checkpoint
metadata. A command added to artkit without a row here fails ``test_every_command_is_in_the_matrix``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import TINY, artkit, make_dacon, sha256_tree


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, Path]:
    """A dataset, a 1-epoch run, a weights file and a logits file: the inputs every command reads."""
    root = tmp_path_factory.mktemp("matrix")
    data = make_dacon(root / "data")
    artkit("train", data, *TINY, "--epochs", "1", "--out", root / "runs")
    run = root / "runs" / "train"
    artkit("weights", "save", "test_efficientnet", "--no-pretrained", "-o", root / "w.pt")
    artkit("predict", run / "best.pt", data, "-o", root / "sub.csv", "--workers", "0")
    return {"root": root, "data": data, "run": run, "ckpt": run / "best.pt", "weights": root / "w.pt"}


# command -> (args with {ckpt}, {data}, ... placeholders; the placeholders that are files it reads)
MATRIX: dict[str, tuple[list[str], list[str]]] = {
    "eda": (["eda", "{data}", "--out", "{out}", "--workers", "1"], ["data/train.csv"]),
    "clean": (["clean", "{data}", "--out", "{out}", "--workers", "1"], ["data/train.csv"]),
    "train": (
        ["train", "{data}", *TINY, "--epochs", "1", "--out", "{out}", "--weights", "{weights}"],
        ["data/train.csv", "weights"],
    ),
    "eval": (["eval", "{ckpt}", "--out", "{out}", "--workers", "0"], ["ckpt"]),
    "predict": (["predict", "{ckpt}", "{data}", "-o", "{out}/s.csv", "--workers", "0"], ["ckpt", "data/test.csv"]),
    "ensemble": (
        ["ensemble", "{ckpt}", "{ckpt}", "--data", "{data}", "-o", "{out}/e.csv", "--workers", "0"],
        ["ckpt", "data/test.csv"],
    ),
    "explain": (["explain", "{ckpt}", "{data}/test", "-o", "{out}"], ["ckpt"]),
    "runs": (["runs", "{runs}"], ["run/summary.json", "run/config.yaml"]),
    "weights save": (["weights", "save", "test_efficientnet", "--from", "{weights}", "-o", "{out}/w.pt"], ["weights"]),
    "weights show": (["weights", "show", "{weights}"], ["weights"]),
    "models": (["models", "test_"], []),  # reads no file
    "demo": (["demo", "--out", "{out}", "--epochs", "1", "--img-size", "32", "--workers", "0"], []),  # writes only
}


def _commands() -> set[str]:
    """Every command the CLI registers, sub-commands as 'group name'."""
    import typer

    from artkit.cli import app

    group = typer.main.get_group(app)
    found = set()
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None)
        found |= {f"{name} {s}" for s in subs} if subs else {name}
    return found


def test_every_command_is_in_the_matrix():
    assert _commands() == set(MATRIX), "add the new command to MATRIX with the files it reads"


def _copy_env(env: dict[str, Path], tmp: Path) -> dict[str, Path]:
    """A private copy of the inputs (a test replaces some of them with special files)."""
    import shutil

    shutil.copytree(env["data"], tmp / "data")
    shutil.copytree(env["run"], tmp / "runs" / "train")
    shutil.copy(env["weights"], tmp / "w.pt")
    run = tmp / "runs" / "train"
    return {"data": tmp / "data", "run": run, "ckpt": run / "best.pt", "weights": tmp / "w.pt", "runs": tmp / "runs"}


def _args(command: str, paths: dict[str, Path], out: Path) -> list[str]:
    values = {k: str(v) for k, v in paths.items()} | {"out": str(out)}
    return [a.format(**values) for a in MATRIX[command][0]]


def _target(paths: dict[str, Path], name: str) -> Path:
    head, _, rest = name.partition("/")
    return paths[head] / rest if rest else paths[head]


SPECIAL = {"fifo": lambda p: os.mkfifo(p), "dev-zero": lambda p: os.symlink("/dev/zero", p)}
READS = [(c, f) for c, (_, files) in MATRIX.items() for f in files]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(SPECIAL))
@pytest.mark.parametrize(("command", "name"), READS)
def test_a_special_file_as_an_input_is_refused_and_never_hangs(env, tmp_path: Path, command, name, kind):
    paths = _copy_env(env, tmp_path)
    target = _target(paths, name)
    target.unlink()
    SPECIAL[kind](target)
    r = artkit(*_args(command, paths, tmp_path / "out"), ok=False)
    assert "Traceback" not in r.output, r.output
    text = " ".join(r.output.split())
    if command == "runs":  # a damaged run is listed as damaged; the others go on
        assert r.exit_code == 0 and "damaged" in text, r.output
    else:
        assert r.exit_code == 2 and "not a regular file" in text, r.output


@pytest.mark.slow
def test_a_dev_zero_image_among_the_training_images_is_reported_not_read(env, tmp_path: Path):
    paths = _copy_env(env, tmp_path)
    image = next((paths["data"] / "train").glob("*.jpg"))
    image.unlink()
    os.symlink("/dev/zero", image)
    r = artkit("eda", paths["data"], "--out", tmp_path / "eda", "--workers", "1")
    assert r.exit_code == 0, r.output
    r = artkit("train", paths["data"], *TINY, "--epochs", "1", "--out", tmp_path / "runs", "--skip-bad")
    assert r.exit_code == 0 and "unreadable" in r.output, r.output


OUTPUTS = {  # command -> the option that names a file it writes
    "predict": "-o",
    "ensemble": "-o",
    "weights save": "-o",
    "runs": "--csv",
}


def _with_output(command: str, paths: dict[str, Path], out: Path, output: Path) -> list[str]:
    args = _args(command, paths, out)
    flag = OUTPUTS[command]
    if flag in args:
        args[args.index(flag) + 1] = str(output)
    else:
        args += [flag, str(output)]
    return args


@pytest.mark.parametrize(
    "victim",
    [
        "data/train.csv",
        "data/test.csv",
        "data/sample_submission.csv",
        "run/config.yaml",
        "run/results.csv",
        "ckpt",
        "weights",
    ],
)
@pytest.mark.parametrize("command", sorted(OUTPUTS))
def test_an_output_never_replaces_an_input_or_a_file_artkit_did_not_write(env, tmp_path: Path, command, victim):
    paths = _copy_env(env, tmp_path)
    target = _target(paths, victim)
    before = sha256_tree(tmp_path)
    r = artkit(*_with_output(command, paths, tmp_path / "out", target), ok=False)
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert "it would be overwritten" in text and "Traceback" not in r.output, r.output
    assert sha256_tree(tmp_path) == before


@pytest.mark.parametrize("command", sorted(OUTPUTS))
def test_a_symlinked_output_is_written_through_and_the_link_kept(env, tmp_path: Path, command):
    paths = _copy_env(env, tmp_path)
    real = tmp_path / "elsewhere" / "file"
    real.parent.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    r = artkit(*_with_output(command, paths, tmp_path / "out", link))
    assert link.is_symlink() and real.is_file() and real.stat().st_size > 0, r.output
    artkit(*_with_output(command, paths, tmp_path / "out", link))  # again: replaces its own file through the link
    assert link.is_symlink() and os.readlink(link) == str(real)


def test_a_symlink_to_a_users_file_is_refused_like_the_file(env, tmp_path: Path):
    paths = _copy_env(env, tmp_path)
    link = tmp_path / "sub.csv"
    link.symlink_to(paths["data"] / "train.csv")
    before = sha256_tree(paths["data"])
    r = artkit(*_with_output("predict", paths, tmp_path / "out", link), ok=False)
    assert r.exit_code == 2 and "also an input" in " ".join(r.output.split()), r.output
    assert sha256_tree(paths["data"]) == before


# ------------------------------------------------------------------------------------------ markup in names

MARKUP_CLASSES = ["[/]", "Rembrandt [workshop]", "[bold red]x"]


@pytest.mark.slow
def test_markup_in_class_names_prints_as_itself_in_every_command(tmp_path: Path):
    data = make_dacon(tmp_path / "data")
    train = pd.read_csv(data / "train.csv", dtype=str)
    train["artist"] = train["artist"].map(dict(zip(sorted(train["artist"].unique()), MARKUP_CLASSES)))
    train.to_csv(data / "train.csv", index=False)
    runs = tmp_path / "r[/x]"
    outputs = []
    for args in (
        ["eda", data, "--out", tmp_path / "eda[/]", "--workers", "1"],
        ["clean", data, "--out", tmp_path / "clean", "--workers", "1"],
        ["train", data, *TINY, "--epochs", "3", "--out", runs, "--name", "a[b]"],
        ["eval", runs / "a[b]" / "best.pt", "--workers", "0", "--all"],
        ["predict", runs / "a[b]" / "best.pt", data, "-o", tmp_path / "s[/].csv", "--workers", "0"],
        ["ensemble", runs / "a[b]" / "best.pt", "--data", data, "-o", tmp_path / "e.csv", "--workers", "0"],
        ["explain", runs / "a[b]" / "best.pt", data / "test", "-o", tmp_path / "x[/]"],
        ["runs", runs],
        ["weights", "show", runs / "a[b]" / "best.pt"],
    ):
        r = artkit(*args)
        assert "Traceback" not in r.output
        outputs.append(" ".join(r.output.split()))
    assert "r[/x]" in outputs[2] and "a[b]" in outputs[7]
    assert any("Rembrandt [workshop]" in o for o in outputs[3:5]), outputs[3:5]
    assert (tmp_path / "s[/].csv").is_file()


# ------------------------------------------------------------------------------------------ malformed metadata


def _edits() -> dict[str, callable]:
    def deep(ckpt):
        d = {"w": torch.zeros(1)}
        for _ in range(3000):
            d = {"state_dict": d}
        ckpt["state_dict"] = d

    return {
        "model as a list": lambda c: c.update(model=["a", "b"]),
        "img_size 1e9": lambda c: c.update(img_size=10**9),
        "img_size as text": lambda c: c.update(img_size="32"),
        "mean as strings": lambda c: c.update(mean=["a", "b", "c"]),
        "mean 1e30": lambda c: c.update(mean=[1e30, 0.5, 0.5]),
        "std 0": lambda c: c.update(std=[0.0, 0.0, 0.0]),
        "complex tensors": lambda c: c["state_dict"].update(
            {k: v.to(torch.complex64) for k, v in list(c["state_dict"].items())[:1]}
        ),
        "classes as text": lambda c: c.update(classes="abc"),
        "deep state dict": deep,
        "config as a list": lambda c: c.update(config=[1, 2]),
    }


CHECKPOINT_READERS = {
    "eval": ["eval", "{bad}", "--data", "{data}", "--out", "{out}", "--workers", "0"],
    "predict": ["predict", "{bad}", "{data}", "-o", "{out}/s.csv", "--workers", "0"],
    "ensemble": ["ensemble", "{bad}", "--data", "{data}", "-o", "{out}/e.csv", "--workers", "0"],
    "explain": ["explain", "{bad}", "{data}/test", "-o", "{out}"],
    "weights show": ["weights", "show", "{bad}"],
    "train --weights": ["train", "{data}", *TINY, "--epochs", "1", "--out", "{out}", "--weights", "{bad}"],
}


@pytest.mark.parametrize("edit", sorted(_edits()))
def test_malformed_checkpoint_metadata_is_one_message_and_writes_nothing(env, tmp_path: Path, edit):
    ckpt = torch.load(env["ckpt"], weights_only=True)
    _edits()[edit](ckpt)
    bad = tmp_path / "bad.pt"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)  # only to write the deep file; artkit reads it at the default limit
    try:
        torch.save(ckpt, bad)
    finally:
        sys.setrecursionlimit(limit)
    for command, template in CHECKPOINT_READERS.items():
        out = tmp_path / "out"
        args = [a.format(bad=bad, data=env["data"], out=out) for a in template]
        r = artkit(*args, ok=False)
        assert r.exit_code == 2, (command, edit, r.output)
        assert "Traceback" not in r.output and len(r.output) < 2000, (command, r.output)
        assert not list(out.glob("*.csv")) if out.exists() else True, command


def test_weights_file_metadata_is_checked(env, tmp_path: Path):
    for name, edit in {
        "pretrained_cfg as text": lambda w: w.update(pretrained_cfg="x"),
        "mean 1e30": lambda w: w["pretrained_cfg"].update(mean=[1e30, 0, 0], std=[1, 1, 1]),
        "input_size 1e9": lambda w: w["pretrained_cfg"].update(input_size=[3, 10**9, 10**9]),
        "model as a list": lambda w: w.update(model=["x"]),
    }.items():
        w = torch.load(env["weights"], weights_only=True)
        edit(w)
        torch.save(w, tmp_path / "w.pt")
        r = artkit("weights", "show", tmp_path / "w.pt", ok=False)
        assert r.exit_code == 2 and "Traceback" not in r.output, (name, r.output)
        r = artkit("train", env["data"], *TINY, "--out", tmp_path / "o", "--weights", tmp_path / "w.pt", ok=False)
        assert r.exit_code == 2 and "Traceback" not in r.output, (name, r.output)
        assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir()), name
