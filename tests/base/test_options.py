"""One source of options: typed config files, closest-name suggestions, ranges, and CLI-over-file merging."""

from __future__ import annotations

from pathlib import Path

import pytest

from artkit.engine.config import AUTO, TrainConfig
from artkit.errors import ArtkitError
from artkit.inference.config import EnsembleConfig
from artkit.options import config_from_mapping, load_config, merge, options, save_config, to_dict
from artkit.qa.config import CleanConfig, EdaConfig

from helpers import artkit


def test_unknown_key_suggests_the_closest_option():
    with pytest.raises(ArtkitError) as err:
        config_from_mapping(TrainConfig, {"learning_rate": 0.1, "epoch": 3}, "my.yaml")
    assert "learning_rate" in err.value.message and "my.yaml" in err.value.message
    with pytest.raises(ArtkitError) as err:
        config_from_mapping(TrainConfig, {"epoch": 3})
    assert err.value.hint.startswith("did you mean epochs")


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("epochs", "ten", "whole number"),
        ("epochs", 1.7, "whole number"),
        ("model", ["a", "b"], "text"),
        ("pretrained", "no", "true or false"),
        ("lr", "fast", "a number"),
        ("batch_size", True, "whole number"),
    ],
)
def test_wrong_types_name_the_key(key, value, words):
    with pytest.raises(ArtkitError) as err:
        config_from_mapping(TrainConfig, {key: value}, "cfg.yaml")
    assert f"'{key}' in cfg.yaml" in err.value.message and words in err.value.message


def test_numeric_strings_are_numbers_and_ranges_are_checked():
    cfg = config_from_mapping(TrainConfig, {"lr": "1e-4", "epochs": "3", "weight-decay": 0})
    assert cfg.lr == 1e-4 and cfg.epochs == 3 and cfg.weight_decay == 0.0
    with pytest.raises(ArtkitError, match=r"'img_size' in config must be >= 8 \(got 0\)"):
        config_from_mapping(TrainConfig, {"img_size": 0})
    with pytest.raises(ArtkitError, match="finite"):
        config_from_mapping(EnsembleConfig, {"members": ["a.pt"], "weights": "nan,1"})
    with pytest.raises(ArtkitError, match="did you mean crop"):
        config_from_mapping(TrainConfig, {"aug": "cropp"})


def test_command_line_beats_the_file_which_beats_the_defaults():
    given = to_dict(TrainConfig(epochs=7))
    cfg = merge(TrainConfig, given, {"epochs"}, {"epochs": 3, "lr": 0.01}, "f.yaml")
    assert cfg.epochs == 7 and cfg.lr == 0.01 and cfg.batch_size == TrainConfig().batch_size


def test_config_yaml_round_trips_with_help_comments(tmp_path: Path):
    cfg = TrainConfig(model="resnet10t", lr=0.003, name="x", folds=5)
    save_config(cfg, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text(encoding="utf-8")
    assert "lr: 0.003  # Peak learning rate" in text
    assert load_config(TrainConfig, tmp_path / "config.yaml") == cfg


def test_every_option_has_help_and_a_unique_flag():
    for cls in (TrainConfig, EdaConfig, CleanConfig, EnsembleConfig):
        flags = [o.flag for o in options(cls)]
        assert len(flags) == len(set(flags)), cls
        assert all(o.spec.help for o in options(cls)), cls


@pytest.mark.slow
def test_cli_defaults_are_the_dataclass_defaults(tmp_path: Path):
    """The CLI has no defaults of its own: a run with no options records the dataclass defaults."""
    from helpers import make_dacon

    data = make_dacon(tmp_path / "data")
    artkit(
        "train",
        data,
        "--model",
        "test_efficientnet",
        "--no-pretrained",
        "--img-size",
        "32",
        "--epochs",
        "1",
        "--workers",
        "0",
        "--out",
        tmp_path / "runs",
    )
    saved = load_config(TrainConfig, tmp_path / "runs" / "train" / "config.yaml")
    explicit = {"data", "model", "pretrained", "img_size", "epochs", "workers", "out", "chosen"}
    defaults = TrainConfig()
    for name, value in to_dict(saved).items():
        if name in ("aug", "sampler"):  # auto: resolved from the data, with the reason recorded
            assert getattr(defaults, name) == AUTO
            assert saved.chosen[name].startswith(f"{value}: "), name
        elif name not in explicit:
            assert value == getattr(defaults, name), name


def test_config_file_errors_on_the_command_line(tmp_path: Path):
    (tmp_path / "c.yaml").write_text("epochs: ten\n", encoding="utf-8")
    r = artkit("train", tmp_path, "--config", tmp_path / "c.yaml", ok=False)
    assert r.exit_code == 2 and "'epochs' in" in r.output and "Traceback" not in r.output
    r = artkit("train", tmp_path, "--img-size", "0", ok=False)
    assert r.exit_code == 2 and "--img-size must be >= 8 (got 0)" in r.output


def test_docs_option_table_is_current():
    from artkit.cli.docs import options_doc

    doc = Path(__file__).resolve().parents[2] / "docs" / "options.md"
    assert doc.read_text(encoding="utf-8") == options_doc(), "regenerate: python -m artkit.cli.docs docs/options.md"
