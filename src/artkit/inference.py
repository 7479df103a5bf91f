"""Running a checkpoint over a table of images: shared by predict, eval and ensemble."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from artkit.checkpoint import load_checkpoint, model_from_checkpoint
from artkit.data.dataset import ImageTable
from artkit.data.layout import Columns, DataSource, discover, read_csv_text, table_from_csv
from artkit.errors import ArtkitError
from artkit.reporting import Reporter


@dataclass
class InferenceOptions:
    batch_size: int = 64
    device: str = "auto"
    amp: str = "auto"
    workers: int | None = None
    tta: str = "none"


def run_checkpoint(ckpt: dict[str, Any], paths: list[str], opts: InferenceOptions, stage: str = "predict",
                   reporter: Reporter | None = None) -> np.ndarray:
    """Float32 logits of ``ckpt``'s model for every image of ``paths``, in order.

    ``stage`` 'predict' resizes the image as it is; 'val' applies the run's validation view
    (e.g. the centre-quarter crop of the ``crop`` preset), as during training.
    """
    import torch
    from torch.utils.data import DataLoader

    from artkit.engine import predict_logits, resolve_amp, resolve_device, use_channels_last
    from artkit.trainer import default_workers
    from artkit.transforms import create_transform, get_preset
    from artkit.tta import build_views

    views = build_views(opts.tta)
    device = resolve_device(opts.device)
    amp_dtype = resolve_amp(opts.amp, device)
    aug = ckpt["config"].get("aug", "none")
    size = ckpt["img_size"]
    transform = create_transform(aug, size, tuple(ckpt["mean"]), tuple(ckpt["std"]), stage)
    decode = int(size * (get_preset(aug).decode_factor if stage == "val" else 1.0))
    workers = default_workers() if opts.workers is None else opts.workers
    loader = DataLoader(ImageTable(paths, None, transform, decode), batch_size=opts.batch_size, num_workers=workers,
                        pin_memory=device.type == "cuda")
    model = model_from_checkpoint(ckpt).to(device)
    channels_last = use_channels_last(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    on_step = (lambda done, total: reporter.progress("predict", done, total)) if reporter else None
    try:
        logits, _ = predict_logits(model, loader, device, amp_dtype, views, channels_last, on_step)
    except torch.cuda.OutOfMemoryError:
        raise ArtkitError(f"CUDA ran out of memory at --batch-size {opts.batch_size}", "lower --batch-size") from None
    except RuntimeError as exc:
        if "size" in str(exc) and "multi-scale" in opts.tta:
            raise ArtkitError(f"{ckpt['model']} cannot take other input sizes, so --tta multi-scale does not apply",
                              "use hflip or five-crop") from None
        raise
    finally:
        del model
    return logits


# --------------------------------------------------------------------------- predict


@dataclass
class PredictConfig:
    checkpoint: str
    data: str = "data"
    csv: str | None = None
    out: str = "submission.csv"
    logits: str | None = None
    id_col: str | None = None
    image_col: str | None = None
    options: InferenceOptions = field(default_factory=InferenceOptions)


@dataclass
class PredictResult:
    submission: Path
    logits: Path
    rows: int
    counts: dict[str, int]


def load_test_table(data: str, csv: str | None, columns: Columns) -> tuple[pd.DataFrame, DataSource | None]:
    """The test images in their given order, from ``--csv`` or the dataset folder."""
    if csv:
        table, _, _ = table_from_csv(Path(csv), Columns(columns.id, columns.image, None), labelled=False)
        source = discover(data) if Path(data).is_dir() else None
        return table, source
    source = discover(data, columns=columns)
    return source.require_test(), source


def submission_columns(source: DataSource | None, label_name: str | None, ids: list[str]) -> tuple[str, str]:
    """Header of the submission: as in sample_submission.csv when present, checked against the test ids."""
    if source is None or source.sample_submission is None:
        return "id", label_name or "label"
    sample = read_csv_text(source.sample_submission)
    if len(sample.columns) < 2:
        raise ArtkitError(f"{source.sample_submission} should have an id and a label column")
    sample_ids = sample[sample.columns[0]].tolist()
    if sample_ids != ids:
        missing = sorted(set(sample_ids) - set(ids))[:3]
        extra = sorted(set(ids) - set(sample_ids))[:3]
        detail = (f"ids only in sample_submission: {missing}; only in the test set: {extra}"
                  if (missing or extra) else "same ids in another order")
        raise ArtkitError(f"the test images do not match {source.sample_submission} ({detail})",
                          "check --csv/--data; a shuffled test order silently ruins a submission")
    return sample.columns[0], sample.columns[1]


def save_logits(path: Path, ids: list[str], classes: list[str], logits: np.ndarray) -> None:
    """An ``.npz`` of ``ids``, ``classes`` and float32 ``logits``: what ``artkit ensemble`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, ids=np.array(ids, dtype=str), classes=np.array(classes, dtype=str),
                 logits=logits.astype(np.float32))
    tmp.replace(path)


def load_logits(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise ArtkitError(f"logits file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["ids"].tolist(), z["classes"].tolist(), z["logits"].astype(np.float32)
    except (KeyError, ValueError, OSError) as exc:
        raise ArtkitError(f"{path} is not an artkit logits file ({exc})",
                          "write one with `artkit predict CKPT --logits FILE`") from None


def write_submission(path: Path, ids: list[str], labels: list[str], id_col: str, label_col: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pd.DataFrame({id_col: ids, label_col: labels}).to_csv(tmp, index=False, encoding="utf-8")
    tmp.replace(path)


def run_predict(cfg: PredictConfig, reporter: Reporter | None = None) -> PredictResult:
    opts = cfg.options
    ckpt = load_checkpoint(cfg.checkpoint)
    table, source = load_test_table(cfg.data, cfg.csv, Columns(cfg.id_col, cfg.image_col, None))
    ids = table["id"].tolist()
    id_col, label_col = submission_columns(source, ckpt["config"].get("label_col") or
                                           (source.label_col if source else None), ids)
    logits = run_checkpoint(ckpt, table["path"].tolist(), opts, "predict", reporter)
    classes = list(ckpt["classes"])
    labels = [classes[i] for i in logits.argmax(1)]
    out = Path(cfg.out)
    logits_path = Path(cfg.logits) if cfg.logits else out.with_suffix(".npz")
    save_logits(logits_path, ids, classes, logits)
    write_submission(out, ids, labels, id_col, label_col)
    counts = pd.Series(labels).value_counts().to_dict()
    return PredictResult(out, logits_path, len(ids), {str(k): int(v) for k, v in counts.items()})


# --------------------------------------------------------------------------- eval


@dataclass
class EvalConfig:
    checkpoint: str
    data: str | None = None
    csv: str | None = None
    out: str | None = None
    id_col: str | None = None
    image_col: str | None = None
    label_col: str | None = None
    options: InferenceOptions = field(default_factory=InferenceOptions)


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_class: list[dict]
    confused: list[dict]
    rows: int
    source: str
    out_dir: Path
    files: list[Path]


def _labelled_rows(cfg: EvalConfig, ckpt: dict[str, Any]) -> tuple[pd.DataFrame, str, str]:
    """(id, path, label) rows to score, a description of where they came from, and the stage."""
    columns = Columns(cfg.id_col, cfg.image_col, cfg.label_col)
    if cfg.csv:
        table, _, _ = table_from_csv(Path(cfg.csv), columns, labelled=True)
        return table, str(cfg.csv), "predict"
    if cfg.data:
        return discover(cfg.data, columns=columns).require_train(), f"{cfg.data} (all labelled rows)", "predict"
    split_path = Path(cfg.checkpoint).parent / "split.csv"
    if not split_path.exists():
        raise ArtkitError(f"no split.csv beside {cfg.checkpoint}, so the run's validation rows are unknown",
                          "pass --data DIR or --csv FILE with labelled images")
    split = pd.read_csv(split_path, dtype=str, keep_default_na=False, encoding="utf-8")
    val = split[split["split"] == "val"]
    if len(val) == 0:
        raise ArtkitError(f"the run of {cfg.checkpoint} has no validation rows (trained with --full)",
                          "pass --data DIR or --csv FILE with labelled images")
    return val, f"validation split of {split_path.parent}", "val"


def run_eval(cfg: EvalConfig, reporter: Reporter | None = None) -> EvalResult:
    from artkit.metrics import confusion, most_confused, per_class, summary_metrics
    from artkit.plots import plot_confusion
    from artkit.runs import write_json

    opts = cfg.options
    ckpt = load_checkpoint(cfg.checkpoint)
    classes = list(ckpt["classes"])
    rows, described, stage = _labelled_rows(cfg, ckpt)
    unknown = sorted(set(rows["label"]) - set(classes))
    if unknown:
        raise ArtkitError(f"labels not among the checkpoint's {len(classes)} classes: {', '.join(unknown[:5])}"
                          + (" ..." if len(unknown) > 5 else ""),
                          "evaluate on data with the classes the model was trained on (check spelling)")
    logits = run_checkpoint(ckpt, rows["path"].tolist(), opts, stage, reporter)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[v] for v in rows["label"]], dtype=np.int64)
    pred = logits.argmax(1)
    metrics = summary_metrics(y, pred)
    pc = per_class(y, pred, classes)
    cm = confusion(y, pred, len(classes))
    confused = most_confused(cm, classes, 10)
    out = Path(cfg.out) if cfg.out else Path(cfg.checkpoint).parent / f"eval_{Path(cfg.checkpoint).stem}"
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "metrics.json", out / "confusion_matrix.png", out / "confusion_matrix_normalized.png"]
    write_json(files[0], {"checkpoint": str(cfg.checkpoint), "data": described, "rows": len(y), "tta": opts.tta,
                          **metrics, "per_class": pc, "most_confused": confused})
    plot_confusion(cm, classes, files[1])
    plot_confusion(cm, classes, files[2], normalize=True)
    return EvalResult(metrics, pc, confused, len(y), described, out, files)
