"""Running a checkpoint over a list of images: shared by predict, eval and ensemble."""

from __future__ import annotations

from typing import Any

import numpy as np

from artkit.errors import ArtkitError
from artkit.inference.config import InferenceOptions
from artkit.progress import Reporter


def check_tta(ckpt: dict[str, Any], tta: str, model) -> None:
    """Refuse views that change the input size for models that take one size only (ViTs)."""
    from artkit.inference.tta import resizes

    fixed = getattr(getattr(model, "patch_embed", None), "strict_img_size", False)
    if resizes(tta) and fixed:
        raise ArtkitError(
            f"{ckpt['model']} takes a fixed input size ({ckpt['img_size']} px), so --tta multi-scale "
            "does not apply to it",
            "use hflip or five-crop",
        )


# weights of the models that run together in one pass over the images; beyond it, the group takes several passes
MAX_PASS_BYTES = 2 * 1024**3


def run_checkpoint(
    ckpt: dict[str, Any],
    paths: list[str],
    opts: InferenceOptions,
    stage: str = "predict",
    reporter: Reporter | None = None,
    source: str = "checkpoint",
    features: list | None = None,
) -> np.ndarray:
    """Float32 logits of ``ckpt``'s model for every image of ``paths``, in order.

    ``stage`` 'predict' resizes the image as it is; 'val' applies the run's validation view
    (e.g. the centre-quarter crop of the ``crop`` preset), as during training. A ``features`` list receives the
    pooled features (the classifier's input, views averaged) as one float32 array.
    """
    return _run_models([(source, ckpt)], paths, opts, stage, reporter, features)[0]


def run_checkpoints(
    sources: list[str], paths: list[str], opts: InferenceOptions, reporter: Reporter | None = None
) -> dict[str, tuple[list[str], np.ndarray]]:
    """Classes and logits of several checkpoints over the same images (an ensemble's members and folds): those that
    preprocess alike (image size, normalisation) share one pass, each image decoded once and every model run on
    its batch; the models of a pass hold at most :data:`MAX_PASS_BYTES` of weights."""
    from collections import defaultdict

    from artkit.engine.checkpoint import load_checkpoint

    groups: dict[tuple, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for source in dict.fromkeys(sources):
        ckpt = load_checkpoint(source)
        groups[(ckpt["config"].get("aug", "none"), ckpt["img_size"], *ckpt["mean"], *ckpt["std"])].append(
            (source, ckpt)
        )
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    for members in groups.values():
        for chunk in _within_bytes(members):
            logits = _run_models(chunk, paths, opts, "predict", reporter)
            out.update({source: (list(ckpt["classes"]), z) for (source, ckpt), z in zip(chunk, logits)})
    return out


def _within_bytes(members: list[tuple[str, dict[str, Any]]]) -> list[list[tuple[str, dict[str, Any]]]]:
    """``members`` in runs of at most :data:`MAX_PASS_BYTES` of weights (at least one each)."""
    chunks: list[list] = [[]]
    held = 0
    for member in members:
        size = sum(t.numel() * t.element_size() for t in member[1]["state_dict"].values())
        if chunks[-1] and held + size > MAX_PASS_BYTES:
            chunks.append([])
            held = 0
        chunks[-1].append(member)
        held += size
    return chunks


def _run_models(
    members: list[tuple[str, dict[str, Any]]],
    paths: list[str],
    opts: InferenceOptions,
    stage: str,
    reporter: Reporter | None,
    features: list | None = None,
) -> list[np.ndarray]:
    """Logits of each (source, checkpoint) of ``members`` (which preprocess alike) in one pass over ``paths``."""
    import torch

    from artkit.engine.device import Runtime, compile_failure
    from artkit.engine.steps import predict_logits_of, split_note
    from artkit.inference.features import WithFeatures, split_features
    from artkit.inference.tta import build_views, resizes

    views = build_views(opts.tta)
    rt = Runtime.create(opts.device, opts.amp, phase="inference", compile=opts.compile and features is None)
    if reporter and rt.amp_dtype is not None and rt.amp_reason:  # auto moved off fp32: say so
        reporter.message(f"amp {rt.amp_name}")
    first = members[0][1]
    loader = image_loader(first, paths, opts, stage, rt, reporter)
    models = []
    for source, ckpt in members:
        model = inference_model(ckpt, source, rt)
        check_tta(ckpt, opts.tta, model)
        models.append(rt.compiled(model))
    if features is not None:
        models[0] = WithFeatures(models[0])
    on_step = (lambda done, total: reporter.progress("predict", done, total)) if reporter else None
    on_split = (lambda batch, part: reporter.message(split_note("inference", batch, part))) if reporter else None
    try:
        logits, _ = predict_logits_of(models, loader, rt, views, on_step, on_split)
    except torch.cuda.OutOfMemoryError:
        raise ArtkitError(  # batches that run out of memory go on in parts: this is one image that does not fit
            f"CUDA ran out of memory running {first['model']} on one image, after parts of its batches of "
            f"{opts.batch_size}",
            "other processes may hold the GPU's memory (nvidia-smi shows them); else --device cpu",
        ) from None
    except RuntimeError as exc:  # models without a size flag that still fail on other input sizes
        if (failure := compile_failure(exc)) is not None:
            raise failure from None
        if resizes(opts.tta) and "size" in str(exc):
            raise ArtkitError(
                f"{first['model']} cannot take other input sizes, so --tta multi-scale does not apply",
                "use hflip or five-crop",
            ) from None
        raise
    finally:
        if features is not None:
            models[0].remove()
        del models
    if features is not None:
        logits[0], kept = split_features(logits[0], len(first["classes"]))
        features[:] = [kept] if len(kept) else []
    for (source, _), out in zip(members, logits):
        refuse_non_finite(out, source)
    return logits


def inference_model(ckpt: dict[str, Any], source: str, rt):
    """The checkpoint's model for inference on ``rt``'s device, each convolution fused with the batch norm it feeds
    where the fused model gives the same logits (models/fuse.py). It is moved first, so that the probe passes that
    find and check the pairs run on the device too, not on the CPU."""
    import torch

    from artkit.engine.checkpoint import model_from_checkpoint
    from artkit.models.fuse import fuse_conv_bn

    size = ckpt["img_size"]
    probe = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    return fuse_conv_bn(rt.prepare(model_from_checkpoint(ckpt, source)), rt.images(probe))[0]


def image_loader(
    ckpt: dict[str, Any], paths: list[str], opts: InferenceOptions, stage: str, rt, reporter: Reporter | None = None
):
    """Batches of ``paths`` preprocessed as the checkpoint's model expects them, on ``rt``'s device."""
    from artkit.data.dataset import ImageTable, data_loader
    from artkit.data.decode_cache import plan_decode_cache
    from artkit.data.transforms import create_transform, decode_size
    from artkit.engine.device import DeviceBatches
    from artkit.system import loader_workers

    aug = ckpt["config"].get("aug", "none")
    size = ckpt["img_size"]
    transform = create_transform(aug, size, stage)
    decode = decode_size(aug, size, stage)
    workers = loader_workers(rt.device.type) if opts.workers is None else opts.workers
    hint = "every image must be readable to predict it: fix or replace the file (`artkit clean` lists them all)"
    plan = plan_decode_cache(opts.cache, paths, decode)
    if reporter and plan.note:
        reporter.message(plan.note)
    table = ImageTable(paths, None, transform, decode, bad_hint=hint, cache=plan.cache)
    loader = data_loader(table, workers, rt.pin_memory, epochs=False, batch_size=opts.batch_size)
    return DeviceBatches(loader, rt, ckpt["mean"], ckpt["std"])


def refuse_non_finite(logits: np.ndarray, source: str) -> None:
    """NaN or inf logits make an arbitrary (usually one-class) prediction: never write one silently."""
    if logits.size and not np.isfinite(logits).all():
        rows = int((~np.isfinite(logits)).any(axis=1).sum())
        raise ArtkitError(
            f"{source} gives non-finite (NaN or inf) logits for {rows} of {len(logits)} images",
            "the model diverged or the file is damaged: use another checkpoint (e.g. an earlier "
            "epoch), or retrain with a lower --lr",
        )
