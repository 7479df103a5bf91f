"""The Python API (artkit.train, ...): the command line's options, checks and run folders, as functions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import artkit
from artkit.errors import ArtkitError


def test_the_api_is_lazy_and_listed():
    out = subprocess.run(
        ["python", "-c", "import sys, artkit; print('torch' in sys.modules, callable(artkit.train))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["False", "True"]  # import artkit stays instant: torch comes with the first call
    assert {"train", "evaluate", "predict", "ensemble", "demo_data"} <= set(dir(artkit))
    with pytest.raises(AttributeError):
        artkit.no_such_function  # noqa: B018


def test_options_are_checked_as_on_the_command_line(tmp_path: Path):
    with pytest.raises(ArtkitError) as err:
        artkit.train(str(tmp_path), epoch=3)
    assert "epoch" in str(err.value) and "epochs" in str(err.value)  # the closest name
    with pytest.raises(ArtkitError) as err:
        artkit.train(str(tmp_path), epochs="many")
    assert "epochs" in str(err.value)
    (tmp_path / "train.csv").write_text("id,img_path,artist\n", encoding="utf-8")
    with pytest.raises(ArtkitError) as err:  # an output may not replace an input, as with -o on the command line
        artkit.predict(str(tmp_path / "best.pt"), str(tmp_path), out=str(tmp_path / "train.csv"))
    assert "train.csv" in str(err.value)


def test_paths_are_accepted_where_options_hold_text(tmp_path: Path):
    from artkit.cli.api import _config

    cfg = _config("ensemble", {"members": [tmp_path / "a.pt", tmp_path / "b.pt"], "out": tmp_path / "s.csv"})
    assert cfg.members == [str(tmp_path / "a.pt"), str(tmp_path / "b.pt")] and cfg.out == str(tmp_path / "s.csv")
