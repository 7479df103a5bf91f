"""Options of ``artkit predict``, ``eval`` and ``ensemble``, each written once (see :mod:`artkit.options`)."""

from __future__ import annotations

from dataclasses import dataclass

from artkit.data.options import DATA_PANEL, ColumnNames, DataFolder, ImagesCsv
from artkit.engine.config import amp_option, cache_option, compile_option, device_option, workers_option
from artkit.inference.tta import TTA_GROUPS
from artkit.options import described, option

RUN_PANEL, OUTPUT_PANEL = "Inference", "Output"
ENSEMBLE_MODES = {"logit": "average logits", "prob": "average probabilities", "geometric": "average log-probabilities"}


@dataclass(kw_only=True)
class InferenceOptions:
    """How a model runs over images: shared by predict, eval and ensemble."""

    tta: str = option(
        "hflip",
        "Test-time augmentation, combinable with commas (views multiply, and so does the time); the default, "
        f"hflip, doubles the inference time for a small gain (docs/benchmarks.md): {described(TTA_GROUPS)}.",
        panel=RUN_PANEL,
    )
    batch_size: int = option(64, "Images per forward pass.", short="-b", panel=RUN_PANEL, min=1)
    device: str = device_option(panel=RUN_PANEL)
    amp: str = amp_option(panel=RUN_PANEL)
    compile: bool = compile_option(panel=RUN_PANEL)
    workers: int | None = workers_option(panel=RUN_PANEL)
    cache: str = cache_option(panel=RUN_PANEL)


@dataclass(kw_only=True)
class CheckpointArg:
    checkpoint: str = option(help="A checkpoint, e.g. runs/train/best.pt.", argument=True, reads=True)


@dataclass(kw_only=True)
class PredictConfig(InferenceOptions, ColumnNames, ImagesCsv, DataFolder, CheckpointArg):
    out: str = option(
        "submission.csv",
        "Submission file: rows in the test set's order (test.csv, or --csv).",
        short="-o",
        panel=OUTPUT_PANEL,
        writes="submission",
    )
    logits: str | None = option(
        None, "Where to save logits for ensembling (default: beside -o, .npz).", panel=OUTPUT_PANEL, writes="logits"
    )


@dataclass(kw_only=True)
class EvalConfig(InferenceOptions, ColumnNames, ImagesCsv, DataFolder, CheckpointArg):
    data: str | None = option(
        None,
        "Score every labelled row of this dataset (default: the run's validation split).",
        argument=True,
        panel=DATA_PANEL,
        reads=True,
    )
    out: str | None = option(None, "Output folder (default: beside the checkpoint, eval_<name>/).", panel=OUTPUT_PANEL)
    show_all: bool = option(
        False, "List every class in the per-class table (default: the 10 worst).", flag="--all", panel=OUTPUT_PANEL
    )


@dataclass(kw_only=True)
class EnsembleConfig(InferenceOptions, ColumnNames, ImagesCsv, DataFolder):
    data: str | None = option(
        None,
        "Dataset folder whose test set the members predict (test.csv or test/, and sample_submission.csv); "
        "default: the folder the members were trained on, when it still exists.",
        panel=DATA_PANEL,
        reads=True,
    )
    members: list[str] = option(
        help="Checkpoints (.pt), logits files from `artkit predict --logits` (.npz), or k-fold "
        "run folders (their fold*/best.pt, and oof.csv for --fit-weights).",
        argument=True,
        reads=True,
    )
    out: str = option(
        "submission.csv",
        "Submission file, in the test set's order.",
        short="-o",
        panel=OUTPUT_PANEL,
        writes="submission",
    )
    logits: str | None = option(
        None, "Where to save the ensemble's logits (default: beside -o, .npz).", panel=OUTPUT_PANEL, writes="logits"
    )
    mode: str = option("logit", "How members are averaged:", choices=ENSEMBLE_MODES, panel=RUN_PANEL)
    weights: list[float] | None = option(None, "Member weights, comma-separated, e.g. 2,1,1.", panel=RUN_PANEL, min=0)
    fit_weights: bool = option(
        False,
        "Choose weights maximising out-of-fold macro-F1 of k-fold run members (coarse "
        "grid, kept only if they win on held-out OOF halves).",
        panel=RUN_PANEL,
    )


@dataclass(kw_only=True)
class ExplainConfig(ColumnNames, ImagesCsv, CheckpointArg):
    images: list[str] = option(
        help="Image files and/or folders of images to explain (or use --csv).", argument=True, factory=list, reads=True
    )
    out: str = option(
        "explain", "Output folder for one PNG per image and explain.html.", short="-o", panel=OUTPUT_PANEL
    )
    layer: str | None = option(
        None,
        "The layer to explain (a module name; default: the model's last feature "
        "stage, e.g. blocks.6 of an EfficientNet, blocks.11 of a ViT).",
        panel=RUN_PANEL,
    )
    top_k: int = option(3, "How many of the top classes to list per image.", panel=RUN_PANEL, min=1)
    batch_size: int = option(16, "Images per forward and backward pass.", short="-b", panel=RUN_PANEL, min=1)
    device: str = device_option(panel=RUN_PANEL)
    cache: str = cache_option(panel=RUN_PANEL)
