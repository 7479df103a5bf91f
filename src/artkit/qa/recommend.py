"""``recommended.yaml``: the training options a dataset calls for, each with its reason, ready for
``artkit train --config`` (written by ``artkit eda``). The choices are the ones ``--aug auto`` and
``--sampler auto`` make (:mod:`artkit.data.recipe`), so eda's advice and a default run agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from artkit.data.layout import DataSource
from artkit.data.recipe import choose_aug, choose_sampler
from artkit.engine.config import TrainConfig
from artkit.options import typed_mapping
from artkit.writer import write_yaml, yaml_text

HEADER = (
    "Training options this dataset calls for, each with its reason (written by artkit eda).\n"
    "Use: artkit train --config {path}   (flags on the command line win over this file)"
)


def recommend(inputs: DataSource, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(options, reason per option, notes) for the dataset ``inputs`` with the eda numbers ``data``."""
    options: dict[str, Any] = {"data": str(inputs.root.resolve())}
    reasons = {"data": "the dataset folder eda read"}
    if inputs.train_csv is not None and inputs.train_csv.name != "train.csv":
        options["train_csv"], reasons["train_csv"] = str(inputs.train_csv.resolve()), "the training CSV eda read"
    if inputs.test_csv is not None and inputs.test_csv.name != "test.csv":
        options["test_csv"], reasons["test_csv"] = str(inputs.test_csv.resolve()), "the test CSV eda read"
    train = inputs.train[inputs.train["label"].astype(str).str.strip() != ""]
    test_paths = inputs.test["path"].tolist() if inputs.test is not None else None
    aug = choose_aug(train["path"].tolist(), test_paths, (_median(data, "train"), _median(data, "test")))
    sampler = choose_sampler(list(data["classes"]["counts"].values()))
    options["aug"], reasons["aug"] = aug.value, aug.reason
    options["sampler"], reasons["sampler"] = sampler.value, sampler.reason
    typed_mapping(TrainConfig, options, "recommended.yaml")  # what eda writes must load
    return options, reasons, _notes(data)


def _median(data: dict[str, Any], which: str) -> tuple[float, float] | None:
    """The median (width, height) eda measured over every readable image of ``which`` (the numbers its summary
    shows, so that recommended.yaml's reason agrees with them)."""
    g = data["geometry"].get(which) or {}
    if not g.get("width", {}).get("n"):
        return None
    return float(g["width"]["median"]), float(g["height"]["median"])


def _notes(data: dict[str, Any]) -> list[str]:
    """What to do before training that no option does."""
    notes = []
    dd, ids, files = data["duplicates"], data["ids"], data["files"]["train"]
    unreadable = sum(files.get("problems", {}).values())
    if unreadable or dd["exact_groups"] or ids["duplicate_train"] or data["labels"]["empty"]:
        notes.append(
            f"run `artkit clean` first ({unreadable} unreadable files, {dd['exact_groups']} duplicate-image "
            f"groups, {len(ids['duplicate_train'])} duplicate ids, {data['labels']['empty']} empty labels), "
            "then add train_csv: clean/train_clean.csv"
        )
    if dd["train_test_leaks"]:
        notes.append(f"{dd['train_test_leaks']} training images are also in the test set: their labels are answers")
    gray = data["colour"]["train"].get("grayscale", 0)
    if gray and files.get("readable"):
        notes.append(
            f"{gray / files['readable']:.0%} of the training images are grayscale; they are converted to "
            "RGB, nothing to set"
        )
    return notes


def write_recommendation(path: Path, options: dict[str, Any], reasons: dict[str, str], notes: list[str]) -> str:
    """Write recommended.yaml and return its text."""
    header = HEADER.format(path=path) + "".join(f"\nNote: {n}" for n in notes)
    write_yaml(path, options, reasons, header)
    return yaml_text(options, reasons, header)
