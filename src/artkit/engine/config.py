"""Every option of ``artkit train``, each written once with its default, help and valid range.

The CLI's ``train`` options, ``--config`` files, each run's ``config.yaml`` and ``docs/options.md`` all come
from :class:`TrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from artkit.data.decode_cache import CACHE_MODES
from artkit.data.options import DATA_PANEL, ColumnNames, DataFolder, Tables
from artkit.data.sampler import SAMPLERS
from artkit.data.transforms import aug_names
from artkit.engine.runs import check_run_name
from artkit.errors import ArtkitError
from artkit.models.losses import CLASS_WEIGHTS, LOSSES
from artkit.options import option

AUTO = "auto"  # an option value that artkit resolves from the data (artkit.engine.auto)
MODEL_PANEL, LOSS_PANEL, OPTIM_PANEL, HARDWARE_PANEL, RUN_PANEL = "Model", "Loss", "Optimisation", "Hardware", "Run"
AMP_MODES = {
    "auto": "bf16 where the GPU has it, else fp16; on CPU, bf16 for inference with bf16 instructions "
    "(AMX, AVX512-BF16), else off",
    "fp16": "float16 with a gradient scaler",
    "bf16": "bfloat16",
    "off": "float32",
}
# timm's "sgd" is Nesterov momentum; all three skip weight decay on norms and biases
OPTIMIZERS = {"adamw": "AdamW", "sgd": "SGD with Nesterov momentum", "adam": "Adam"}
SCHEDULERS = {
    "cosine": "cosine decay to --min-lr after a linear warmup",
    "step": "multiply by --step-gamma every --step-epochs",
    "none": "constant (no warmup)",
}
MONITORS = {"val_macro_f1": "max", "val_acc": "max", "val_loss": "min"}  # metric -> which way is better
DEVICE_HELP = "auto | cpu | cuda | cuda:N."
WORKERS_HELP = (
    "Data-loading processes (default: one per CPU core, at most 8, with a GPU; on a CPU, the cores the model's "
    "threads leave free, usually none: images then load between steps)."
)
COMPILE_HELP = (
    "Compile the model with torch.compile: the first batches wait minutes for the compiler, later ones may run "
    "faster (when it pays: docs/train.md, Hardware)."
)


def device_option(**spec: Any) -> Any:
    """``--device``, shared by every command that runs a model."""
    return option("auto", DEVICE_HELP, **spec)


def amp_option(**spec: Any) -> Any:
    """``--amp``, shared by every command that runs a model."""
    return option("auto", "Mixed precision:", choices=AMP_MODES, **spec)


def cache_option(**spec: Any) -> Any:
    """``--cache``, shared by every command that loads images (artkit.data.decode_cache)."""
    return option("auto", "Decoded images:", choices=CACHE_MODES, **spec)


def compile_option(**spec: Any) -> Any:
    """``--compile``, shared by every command that trains or runs a model over a dataset."""
    return option(False, COMPILE_HELP, **spec)


def workers_option(**spec: Any) -> Any:
    """``--workers``, shared by every command that loads images (None: :func:`artkit.system.loader_workers`)."""
    return option(None, WORKERS_HELP, short="-w", min=0, **spec)


@dataclass(kw_only=True)
class TrainConfig(ColumnNames, Tables, DataFolder):
    """Every option of ``artkit train``; saved whole to ``config.yaml`` in the run directory."""

    val_fraction: float = option(
        0.2, "Stratified holdout fraction for validation.", panel=DATA_PANEL, min=0, max=1, min_open=True, max_open=True
    )
    folds: int | None = option(
        None,
        "Stratified k-fold: train all K folds into <run>/fold{i}/ and write oof.csv and cv.json.",
        panel=DATA_PANEL,
        min=2,
    )
    fold: int | None = option(None, "With --folds K: train only fold i (0-based).", panel=DATA_PANEL, min=0)
    full: bool = option(
        False, "Train on every row, no validation, for exactly --epochs (a final model).", panel=DATA_PANEL
    )
    skip_bad: bool = option(
        False, "Train without unreadable images (counted in the summary) instead of stopping.", panel=DATA_PANEL
    )
    sampler: str = option(
        AUTO,
        "Class sampling:",
        panel=DATA_PANEL,
        choices={AUTO: "sqrt when the largest class has 3x the rows of the smallest, else none", **SAMPLERS},
    )
    aug: str = option(
        AUTO,
        "Augmentation preset: auto (crop when the test images are much smaller than the "
        "training images, as crops are, else light); none; light; crop (quarter-image crops "
        "like Dacon's test set); strong.",
        panel=DATA_PANEL,
        choices=lambda: [AUTO, *aug_names()],
    )
    img_size: int | None = option(
        None, "Input size in pixels (default: the model's pretrained size).", panel=DATA_PANEL, min=8
    )
    img_size_start: int | None = option(
        None,
        "Progressive resizing: the first epoch trains at this size, growing "
        "linearly to --img-size by the last (validation always at --img-size).",
        panel=DATA_PANEL,
        min=8,
    )
    mixup: float = option(0.0, "Mixup alpha (0 = off).", panel=DATA_PANEL, min=0)
    cutmix: float = option(0.0, "CutMix alpha (0 = off), e.g. 1.0.", panel=DATA_PANEL, min=0)
    # model
    model: str = option("efficientnet_b0", "Any timm model name (see `artkit models`).", short="-m", panel=MODEL_PANEL)
    pretrained: bool = option(
        True, "Start from timm's ImageNet weights (downloads once).", negatable=True, panel=MODEL_PANEL
    )
    weights: str | None = option(
        None,
        "Initialise from a local state dict / checkpoint / .safetensors; a classifier "
        "of another size is re-initialised.",
        panel=MODEL_PANEL,
        reads=True,
    )
    drop_rate: float = option(0.0, "Dropout before the classifier.", panel=MODEL_PANEL, min=0, max=1, max_open=True)
    drop_path_rate: float | None = option(
        None, "Stochastic depth rate.", panel=MODEL_PANEL, min=0, max=1, max_open=True
    )
    freeze_epochs: int = option(
        0,
        "Train only the classifier (backbone frozen, BatchNorm statistics kept) for the "
        "first N of --epochs, then everything, like fastai's fine_tune.",
        panel=MODEL_PANEL,
        min=0,
    )
    # loss
    loss: str = option("ce", "Loss:", panel=LOSS_PANEL, choices=LOSSES)
    label_smoothing: float = option(0.1, "Label smoothing epsilon.", panel=LOSS_PANEL, min=0, max=1, max_open=True)
    class_weights: str = option(
        "none", "Class weights of the loss (focal's alpha):", panel=LOSS_PANEL, choices=CLASS_WEIGHTS
    )
    focal_gamma: float = option(2.0, "Focal loss gamma (0 = cross-entropy).", panel=LOSS_PANEL, min=0)
    # optimisation
    optimizer: str = option("adamw", "Optimizer:", panel=OPTIM_PANEL, choices=OPTIMIZERS)
    lr: float = option(
        3e-3, "Peak learning rate (the classifier's, with --layer-decay).", panel=OPTIM_PANEL, min=0, min_open=True
    )
    weight_decay: float = option(0.05, "Weight decay (not applied to norms and biases).", panel=OPTIM_PANEL, min=0)
    layer_decay: float | None = option(
        0.85,
        "Layer-wise learning-rate decay for fine-tuning: the classifier trains at --lr, each "
        "earlier layer group at this times the next (timm); 1 trains every layer at --lr.",
        panel=OPTIM_PANEL,
        min=0,
        max=1,
        min_open=True,
    )
    momentum: float = option(0.9, "SGD momentum.", panel=OPTIM_PANEL, min=0, max=1, max_open=True)
    scheduler: str = option("cosine", "Learning-rate schedule:", panel=OPTIM_PANEL, choices=SCHEDULERS)
    warmup_epochs: float = option(0.2, "Linear warmup length in epochs (may be fractional).", panel=OPTIM_PANEL, min=0)
    min_lr: float = option(1e-6, "Final learning rate of the cosine schedule.", panel=OPTIM_PANEL, min=0)
    step_epochs: int | None = option(
        None, "Step schedule: epochs between decays (default epochs/3).", panel=OPTIM_PANEL, min=1
    )
    step_gamma: float = option(0.1, "Step schedule: decay factor.", panel=OPTIM_PANEL, min=0, max=1, min_open=True)
    epochs: int = option(
        10, "Number of epochs (with --resume: the new total).", short="-e", panel=OPTIM_PANEL, min=1, resumable=True
    )
    time: str | None = option(
        None,
        "Time budget instead of --epochs, e.g. 30m or 2h: the first steps measure the "
        "epoch time, the run does as many epochs as fit and its learning-rate schedule ends "
        "with them. With --folds the budget is for all folds together; with --resume, for "
        "what is left.",
        panel=OPTIM_PANEL,
        resumable=True,
    )
    batch_size: int = option(32, "Images per step.", short="-b", panel=OPTIM_PANEL, min=1)
    grad_accum: int = option(
        1, "Accumulate gradients over N steps (effective batch = N x batch size).", panel=OPTIM_PANEL, min=1
    )
    clip_grad: float | None = option(
        None, "Clip the gradient norm to this value.", panel=OPTIM_PANEL, min=0, min_open=True
    )
    ema: bool = option(
        True,
        "Keep an exponential moving average of the weights; validate and save it (the average, not the last "
        "weights, is best.pt).",
        negatable=True,
        panel=OPTIM_PANEL,
    )
    ema_decay: float | None = option(
        None,
        "EMA decay per update (default: fitted to the run, 1 - 3/updates planned, so that the average spans "
        "the last third of the run; 0.999 for 3,000 updates).",
        panel=OPTIM_PANEL,
        min=0,
        max=1,
        min_open=True,
        max_open=True,
    )
    # hardware
    device: str = device_option(panel=HARDWARE_PANEL, resumable=True)
    devices: str | None = option(
        None,
        "Train on several devices of this machine with DistributedDataParallel: GPU "
        "ids (0,1,2,3) or cpu:N for N CPU processes; artkit starts the torchrun "
        "processes and prints the equivalent torchrun command. With --folds the folds "
        "run in parallel instead, one per device.",
        panel=HARDWARE_PANEL,
    )
    sync_bn: bool = option(
        False, "Synchronise BatchNorm statistics across processes (CUDA, several processes).", panel=HARDWARE_PANEL
    )
    dist_backend: str = option(
        "auto",
        "torch.distributed backend of a multi-process run: auto (nccl on CUDA, gloo on CPU), nccl or gloo.",
        panel=HARDWARE_PANEL,
        choices=("auto", "nccl", "gloo"),
    )
    amp: str = amp_option(panel=HARDWARE_PANEL)
    compile: bool = compile_option(panel=HARDWARE_PANEL, resumable=True)
    workers: int | None = workers_option(panel=HARDWARE_PANEL, resumable=True)
    cache: str = cache_option(panel=HARDWARE_PANEL, resumable=True)
    # run
    seed: int = option(
        42, "Seed for splits, sampling, augmentation and init: same seed, same run on CPU.", panel=RUN_PANEL
    )
    monitor: str = option("val_macro_f1", "Metric that picks best.pt.", panel=RUN_PANEL, choices=tuple(MONITORS))
    patience: int | None = option(
        None, "Stop after N epochs without improvement.", panel=RUN_PANEL, min=1, resumable=True
    )
    out: str = option("runs", "Folder that holds run directories.", panel=RUN_PANEL)
    name: str | None = option(None, "Run name (default train, train2, ...); never overwritten.", panel=RUN_PANEL)
    logger: list[str] = option(
        help="Also log to experiment trackers, comma-separated: tensorboard (event files in "
        "the run folder) and/or mlflow ($MLFLOW_TRACKING_URI, default ./mlruns); each "
        "is an extra: pip install 'artkit[tensorboard]' / 'artkit[mlflow]'.",
        factory=list,
        panel=RUN_PANEL,
        choices=("tensorboard", "mlflow"),
        resumable=True,
    )
    save_every: str | None = option(
        None,
        "Also write last.pt within epochs, every this long (e.g. 10m), so that a preemptible machine loses at "
        "most that much: --resume continues at the step it was written.",
        panel=RUN_PANEL,
        resumable=True,
    )
    resume: str | None = option(
        None,
        "Continue runs/NAME from its last.pt (optionally with a larger --epochs).",
        panel=RUN_PANEL,
        resumable=True,
        reads=True,
    )
    chosen: dict[str, str] | None = option(None, "What the auto options chose, and why (written by artkit).", cli=False)


def check_train_config(cfg: TrainConfig) -> None:
    """The checks that involve more than one option (each option's own range is checked by
    :func:`artkit.options.check_config`)."""
    if cfg.name is not None:
        check_run_name(cfg.name)  # every run, fold and k-fold parent stays inside --out
    checks = [
        (cfg.fold is None or cfg.folds is not None, "--fold needs --folds K", "add --folds K"),
        (
            cfg.fold is None or cfg.folds is None or cfg.fold < cfg.folds,
            f"--fold must be in 0..{(cfg.folds or 1) - 1} (got {cfg.fold})",
            "folds are numbered from 0",
        ),
        (
            not (cfg.full and cfg.folds),
            "--full trains one model on every row; it cannot be combined with --folds",
            "leave out --folds for a final model, or --full for cross-validation",
        ),
        (
            cfg.freeze_epochs < cfg.epochs,
            f"--freeze-epochs must be fewer than --epochs (got {cfg.freeze_epochs} of {cfg.epochs})",
            None,
        ),
        (
            cfg.min_lr < cfg.lr,
            f"--min-lr ({cfg.min_lr:g}) must be below --lr ({cfg.lr:g}), or the rate would rise",
            "lower --min-lr",
        ),
        (
            cfg.img_size_start is None or cfg.img_size is None or cfg.img_size_start <= cfg.img_size,
            f"--img-size-start ({cfg.img_size_start}) must not exceed --img-size ({cfg.img_size})",
            None,
        ),
    ]
    for ok, message, hint in checks:
        if not ok:
            raise ArtkitError(message, hint)
    if cfg.time is not None:
        parse_duration(cfg.time)
    if cfg.save_every is not None:
        parse_duration(cfg.save_every, "--save-every")


def parse_duration(text: str, flag: str = "--time") -> float:
    """``30m``, ``2h``, ``90s``, ``1h30m`` or ``1.5h`` in seconds (``flag``: the option, for the message)."""
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", text.strip().lower())
    rebuilt = "".join(f"{n}{u}" for n, u in parts)
    if not parts or rebuilt != re.sub(r"\s+", "", text.strip().lower()):
        raise ArtkitError(
            f"{flag} must be a duration such as 30m, 2h or 1h30m (got {text!r})", "give a unit: s, m or h"
        )
    seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise ArtkitError(f"{flag} must be longer than 0 (got {text!r})")
    return seconds


@dataclass(kw_only=True)
class RunsConfig:
    """Options of ``artkit runs``."""

    folder: str = option("runs", "The folder that holds the runs (searched recursively).", argument=True, reads=True)
    sort: str = option(
        "started",
        "Order of the rows: started, name, score (best first), time, status or model.",
        choices=("started", "name", "score", "time", "status", "model"),
    )
    csv: str | None = option(None, "Also write the table to this CSV file.", writes="runs table")
