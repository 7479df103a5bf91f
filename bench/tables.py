"""Markdown tables of the benchmark results in bench/results/*.csv, regenerated in place in the docs.

    python bench/tables.py docs/benchmarks.md docs/train.md

A generated table sits between two marker lines; NAME is a key of VIEWS (the CSV's name, and after a colon
the rendering, if not the plain one):

    <!-- table: ablation_30m:summary -->
    | ... |
    <!-- end table -->

Cells are printed as the CSV holds them (read as text, never as floats), so 0.630 stays 0.630.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
MARKED = re.compile(r"(<!-- table: (?P<name>[\w.:-]+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)
NUMBER = re.compile(r"^([-+]?\d|reference$)")  # right-align a column whose cells all start as numbers
SCORES = {"crops_macro_f1": "quarter crops", "crops_hflip_macro_f1": "+ hflip TTA", "full_macro_f1": "full paintings"}

Columns = dict[str, str]  # CSV column -> header
Render = Callable[[Path], str]  # results folder -> Markdown table


def read(results: Path, name: str) -> pd.DataFrame:
    """One results CSV, every cell a string ('' when empty)."""
    return pd.read_csv(results / f"{name}.csv", dtype=str, keep_default_na=False)


def markdown(frame: pd.DataFrame, headers: list[str]) -> str:
    """A Markdown table of ``frame``'s cells under ``headers``."""
    right = [bool(values := [v for v in frame[c] if v]) and all(NUMBER.match(v) for v in values) for c in frame]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---:" if r else "---" for r in right) + " |"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def table(name: str, columns: Columns, where: Callable[[pd.DataFrame], pd.Series] | None = None) -> Render:
    """The plain rendering: the chosen columns of every row (of the rows ``where`` keeps), in file order."""

    def render(results: Path) -> str:
        frame = read(results, name)
        if where is not None:
            frame = frame[where(frame)]
        return markdown(frame[list(columns)], list(columns.values()))

    return render


def runs_of_code(name: str, measures: Columns) -> Render:
    """One row per run of a commit's artkit: the code, what it has, the seed, ``measures``, then the validation
    score, machine and date."""
    columns = {"commit": "code", "note": "what it has", "seed": "seed", **measures}
    return table(name, {**columns, "val_macro_f1": "val (own split)", "machine": "machine", "date": "date"})


def deltas(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's scores minus those of its reference: the ``defaults`` run of the same machine and seed, else
    the machine's first one. Machines of the same kind fit different numbers of epochs into the same time
    budget, so a run is only compared with a run of its own machine."""
    scores = frame[list(SCORES)].apply(pd.to_numeric)
    by_seed: dict[tuple[str, str], int] = {}
    by_host: dict[str, int] = {}
    for i in frame.index[frame["row"] == "defaults"]:
        by_seed.setdefault((frame.at[i, "host"], frame.at[i, "seed"]), i)
        by_host.setdefault(frame.at[i, "host"], i)
    reference = [by_seed.get((h, s), by_host.get(h)) for h, s in zip(frame["host"], frame["seed"])]
    return scores - scores.reindex(reference).to_numpy()


def spread(values: pd.Series) -> str:
    """Mean, and the range when there is more than one run: '0.494 (0.485-0.502)'."""
    mean = f"{values.mean():.3f}"
    return mean if len(values) == 1 else f"{mean} ({values.min():.3f}-{values.max():.3f})"


def signed(value: float) -> str:
    """A change as '+0.018' ('' where the run's machine has no reference run)."""
    return "" if pd.isna(value) else f"{value:+.3f}"


def summary(name: str) -> Render:
    """One line per ablation row: its seeds and machines, each score's mean and range over its runs, and the
    mean change of crops and full paintings against the defaults on the same machine."""

    def render(results: Path) -> str:
        frame = read(results, name)
        scores, change = frame[list(SCORES)].apply(pd.to_numeric), deltas(frame)
        lines = []
        for row, runs in frame.groupby("row", sort=False):
            mean_change = [signed(change.loc[runs.index, c].mean()) for c in ("crops_macro_f1", "full_macro_f1")]
            own = ["reference"] * 2 if row == "defaults" else mean_change
            lines.append(
                [row, ", ".join(runs["seed"]), ", ".join(dict.fromkeys(runs["host"]))]
                + [spread(scores.loc[runs.index, c]) for c in SCORES]
                + own
                + [", ".join(dict.fromkeys(runs["epochs"]))]
            )
        headers = ["row", "seeds", "machines", *SCORES.values(), "vs defaults: crops", "vs defaults: full", "epochs"]
        lines = pd.DataFrame(lines, columns=headers)
        lines = lines.loc[:, (lines != "").any()]  # no machines column where the CSV does not record them
        return markdown(lines, list(lines))

    return render


def machines(name: str) -> Render:
    """One line per machine of a time-budget ablation: when it ran, which commits, and its defaults run."""

    def render(results: Path) -> str:
        frame = read(results, name)
        lines = []
        for host, runs in frame.groupby("host"):
            own = runs[runs["row"] == "defaults"].head(1)  # the machine's reference run
            lines.append(
                [
                    host,
                    ", ".join(dict.fromkeys(runs["date"])),
                    ", ".join(c for c in dict.fromkeys(runs["commit"]) if c) or "not recorded",
                    str(len(runs)),
                    "".join(own["epochs"]),
                    "".join(own["crops_macro_f1"]),
                    "".join(own["full_macro_f1"]),
                ]
            )
        headers = ["machine", "dates", "commits", "runs", "its defaults run: epochs", "crops", "full"]
        return markdown(pd.DataFrame(lines, columns=headers), headers)

    return render


# train's defaults against the alternatives the 30-minute ablation tried: option, default, alternative, its rows
DEFAULTS = [
    ("--aug", "auto (crop here)", "light", ["d_light"]),
    ("--sampler", "auto (sqrt here)", "none", ["d_sampler_none"]),
    ("--lr", "3e-3", "1e-3 / 5e-3", ["d_lr_1e-3", "d_lr_5e-3"]),
    ("--layer-decay", "0.85", "1 (off)", ["d_ld_1"]),
    ("--warmup-epochs", "0.2", "1", ["d_warmup_1"]),
    ("--label-smoothing", "0.1", "0", ["d_ls_0"]),
    ("--batch-size", "32", "16", ["d_bs_16"]),
    ("--loss", "ce", "focal", ["d_focal"]),
    ("--class-weights", "none", "sqrt", ["d_cw_sqrt"]),
    ("--ema", "on, decay fitted", "--no-ema", ["defaults_no_ema"]),
    ("--cutmix / --mixup", "off", "1.0 / 0.2", ["d_cutmix", "d_mixup"]),
    ("--drop-rate / --drop-path-rate", "the model's", "0.2 / 0.1", ["d_dropout", "d_drop_path"]),
    ("--img-size / --img-size-start", "the model's / off", "160 / 96", ["d_img_160", "d_prog"]),
]


def defaults(name: str) -> Render:
    """One line per default: the mean change of switching to the alternative (each run against the defaults of
    its own machine), on crops and whole paintings, and how many runs it rests on."""

    def render(results: Path) -> str:
        frame = read(results, name)
        change = deltas(frame)
        lines = []
        for option, default, alternative, rows in DEFAULTS:
            runs = [frame.index[frame["row"] == row] for row in rows]
            means = [
                " / ".join(signed(change.loc[idx, c].mean()) for idx in runs)
                for c in ("crops_macro_f1", "full_macro_f1")
            ]
            lines.append([f"`{option}`", default, alternative, *means, " / ".join(str(len(idx)) for idx in runs)])
        headers = ["option", "default", "alternative", "crops", "whole paintings", "runs"]
        return markdown(pd.DataFrame(lines, columns=headers), headers)

    return render


ABLATION = {
    "row": "row",
    "change": "change",
    "seed": "seed",
    **SCORES,
    "val_macro_f1": "val (own split)",
    "epochs": "epochs",
    "seconds": "train s",
}


def by_command(prefix: str) -> Callable[[pd.DataFrame], pd.Series]:
    """Keep the rows whose command starts with ``prefix`` (one bench script's rows of a shared CSV)."""
    return lambda frame: frame["command"].str.startswith(prefix)


VIEWS: dict[str, Render] = {
    "decode": table(
        "decode",
        {
            "date": "date",
            "commit": "commit",
            "machine": "machine",
            "images": "images",
            "target_px": "target px",
            "full_ms_per_image": "full decode + resize, ms/image (reference)",
            "draft_ms_per_image": "artkit draft decode + resize, ms/image",
            "speedup": "speed-up (x)",
        },
    ),
    "predict_loader": table(
        "predict_loader",
        {
            "date": "date",
            "commit": "commit",
            "machine": "machine",
            "folder": "test images (copies of)",
            "images": "count",
            "img_size": "px",
            "round": "round",
            "workers": "loader processes",
            "predict_ips": "cold predict, images/s",
            "fused_forward_ips": "fused bare forward, images/s",
            "ratio": "ratio (same run)",
        },
    ),
    "resize": table(
        "resize",
        {
            "date": "date",
            "commit": "commit",
            "machine": "machine",
            "folder": "images",
            "stage": "what is resized",
            "images": "count",
            "img_size": "to px",
            "area_ms": "INTER_AREA, ms/image (reference)",
            "antialiased_ms": "antialiased bilinear, ms/image",
            "speedup_x": "speed-up (x)",
            "mean_abs_diff": "mean difference (grey levels)",
            "max_abs_diff": "largest",
        },
    ),
    "cache": table(
        "cache",
        {
            "date": "date",
            "commit": "commit",
            "machine": "machine",
            "folder": "images",
            "images": "count",
            "aug": "preset",
            "stage": "pipeline",
            "decode_px": "decoded at >= px",
            "plain_img_s": "decoding every time, images/s (reference)",
            "filling_x": "filling the cache (x)",
            "cached_x": "reading the cache (x)",
            "cached_x_range": "rounds' range (x)",
            "kb_per_image": "KB per image",
        },
    ),
    "train_speed": table(
        "train_speed",
        {
            "device": "device",
            "model": "model",
            "img_size": "px",
            "batch": "batch",
            "amp": "amp",
            "workers": "loader processes",
            "train_vs_bare": "train vs a bare step (x)",
            "artkit_vs_timm": "train vs timm train.py (x)",
            "predict_images": "predict images",
            "predict_vs_forward": "predict vs a bare forward (x)",
            "predict_warm_vs_forward": "predict, cache filled, vs a bare forward (x)",
            "predict_vs_fused_forward": "predict vs a bare fused forward (x)",
            "cache_vs_off": "--cache auto vs off (x)",
            "ensemble_vs_predict": "4-member ensemble vs one predict, time (x)",
            "ensemble_memory_vs_predict": "its GPU peak memory (x)",
            "commit": "code",
            "machine": "machine",
            "date": "date",
        },
    ),
    **{
        name: runs_of_code(
            name,
            {
                "epochs": "epochs",
                "images_per_s": "images/s",
                "crops_macro_f1": "quarter crops",
                "crops_hflip_macro_f1": "+ hflip TTA",
            },
        )
        for name in ("time_budget_5m", "time_budget_30m")
    },
    "augment_pairs_10ep": runs_of_code("augment_pairs_10ep", {"images_per_s": "images/s", **SCORES}),
    "amp_cpu": table(
        "amp_cpu",
        {
            "units": "bf16 instructions",
            "phase": "phase",
            "fp32_ips": "fp32 images/s",
            "bf16_ips": "bf16 images/s",
            "bf16_vs_fp32": "bf16 (x fp32)",
            "lowest": "lowest pair",
            "highest": "highest pair",
            "machine": "machine",
            "date": "date",
        },
    ),
    "bf16_predict": table(
        "bf16_predict",
        {
            "images": "held-out crops",
            "fp32_macro_f1": "macro-F1 fp32",
            "bf16_macro_f1": "macro-F1 bf16",
            "bf16_minus_fp32": "bf16 - fp32",
            "same_prediction": "same prediction",
            "bf16_vs_fp32_speed": "bf16 speed (x fp32)",
            "amp_units": "CPU",
            "machine": "machine",
            "date": "date",
        },
    ),
    "worker_threads": table(
        "worker_threads",
        {
            "pair": "pair",
            "images": "images",
            "model": "model",
            "img_size": "px",
            "workers": "workers",
            "cv2_default_ips": "OpenCV's default threads, images/s (reference)",
            "one_thread_vs_default": "one OpenCV thread per worker (x)",
            "machine": "machine",
            "commit": "commit",
        },
    ),
    "cpu_workers": table(
        "cpu_workers",
        {
            "pair": "pair",
            "phase": "phase",
            "workers": "loader processes",
            "images": "images",
            "bare_ips": "bare loop, images/s (reference)",
            "artkit_ips": "artkit, images/s",
            "ratio": "artkit vs bare (x)",
            "ratio_fused": "vs a bare fused forward (x)",
            "data_wait_s": "waited for the loader, s",
            "commit": "code",
            "machine": "machine",
            "date": "date",
        },
    ),
    "same_pad": table(
        "same_pad",
        {
            "img_size": "px",
            "batch": "batch",
            "amp": "amp",
            "phase": "phase",
            "timm_ips": "timm's input padding, images/s (reference)",
            "padless_vs_timm": "kernel padding (x, median)",
            "lowest": "lowest round",
            "highest": "highest round",
            "machine": "machine",
            "date": "date",
        },
    ),
    "vs_timm": table(
        "vs_timm",
        {
            "round": "round",
            "first": "ran first",
            "device": "device",
            "img_size": "px",
            "batch": "batch",
            "amp": "amp",
            "bare_step_ips": "bare step, images/s",
            "artkit_train_ips": "artkit, images/s",
            "timm_train_ips": "timm train.py, images/s",
            "artkit_vs_timm": "artkit vs timm (x)",
            "artkit_vs_bare": "artkit vs bare (x)",
            "timm_vs_bare": "timm vs bare (x)",
            "malloc": "malloc",
            "commit": "code",
            "machine": "machine",
            "date": "date",
        },
    ),
    "malloc": table(
        "malloc",
        {
            "phase": "phase",
            "img_size": "px",
            "batch": "batch",
            "round": "round",
            "malloc": "malloc",
            "ms_per_step": "ms a step",
            "faults_per_step": "page faults a step",
            "kernel_s_per_step": "kernel CPU s a step",
            "peak_rss_mb": "peak memory, MB",
            "speed_vs_system": "speed vs glibc's own (x)",
            "commit": "code",
            "machine": "machine",
            "date": "date",
        },
        lambda frame: ~frame["phase"].str.startswith("artkit "),
    ),
    "malloc_commands": table(
        "malloc",
        {
            "phase": "command",
            "images": "images",
            "round": "round",
            "malloc": "malloc",
            "images_per_s": "images/s",
            "command_s": "command, s",
            "speed_vs_system": "speed vs glibc's own (x)",
            "commit": "code",
            "machine": "machine",
            "date": "date",
        },
        lambda frame: frame["phase"].str.startswith("artkit "),
    ),
    "compile": table(
        "compile",
        {
            "device": "device",
            "model": "model",
            "img_size": "px",
            "batch": "batch",
            "phase": "phase",
            "amp": "amp",
            "eager_ips": "eager, images/s (reference)",
            "compiled_vs_eager": "compiled (x)",
            "compile_s": "compile s",
            "break_even_s": "pays off after s",
            "machine": "machine",
            "date": "date",
        },
    ),
    "eda_clean": table("eda_clean", {"data": "data", "step": "step", "seconds": "wall s", "ratio": "ratio (same run)"}),
    "ablation_2ep": table("ablation_2ep", {**ABLATION, "date": "date"}),
    "ablation_2ep:summary": summary("ablation_2ep"),
    "ablation_30m": table("ablation_30m", {**ABLATION, "host": "machine", "date": "date"}),
    "ablation_30m:summary": summary("ablation_30m"),
    "ablation_30m:defaults": defaults("ablation_30m"),
    "ablation_30m:machines": machines("ablation_30m"),
    "explain": table(
        "explain", {"step": "command", "images": "images", "seconds": "wall s", "vs_predict": "vs predict"}
    ),
    "train_paintings": table(
        "train_paintings", {"method": "method", "model": "model", "variant": "variant", **SCORES, "seconds": "train s"}
    ),
    "channels_last": table(
        "channels_last",
        {"model": "model", "measure": "measure", "speedup": "channels_last speed-up (x)"},
        by_command("python bench/bench_channels_last.py"),
    ),
    "channels_last:end_to_end": table(
        "channels_last",
        {
            "measure": "tf_efficientnet_lite0",
            "contiguous": "contiguous",
            "channels_last": "channels_last",
            "unit": "unit",
            "speedup": "speed-up (x)",
        },
        lambda frame: ~by_command("python bench/bench_channels_last.py")(frame),
    ),
    "kfold_ensemble": table(
        "kfold_ensemble",
        {
            "scored_on": "scored on",
            "tta": "TTA",
            "fold0_macro_f1": "fold 0",
            "fold1_macro_f1": "fold 1",
            "fold2_macro_f1": "fold 2",
            "cv_macro_f1": "CV mean",
            "cv_std": "± std",
            "oof_macro_f1": "OOF",
            "ensemble_macro_f1": "ensemble (logit mean)",
            "vs_best_member": "vs best member",
        },
    ),
    "budget_plan": table(
        "budget_plan",
        {
            "budget_s": "budget, s",
            "reserve": "end reserve",
            "grow_margin": "grow margin",
            "overrun_slack": "overrun slack",
            "spread": "epoch spread",
            "drift": "epoch drift",
            "mean_used": "used, mean",
            "worst_used": "used, worst",
            "mean_epochs": "epochs",
            "mean_plan_changes": "re-plans",
            "mean_reversals": "reversals",
            "date": "date",
        },
    ),
    "ensemble_pass": table(
        "ensemble_pass",
        {
            "code": "code",
            "commit": "commit",
            "img_size": "px",
            "members": "members",
            "predict_s": "one predict, s (reference)",
            "ensemble_s": "ensemble, s",
            "time_ratio": "time (x)",
            "memory_ratio": "peak memory (x)",
            "machine": "machine",
            "date": "date",
        },
    ),
    "distributed": table(
        "distributed",
        {
            "epochs": "epochs",
            "single_images_per_s": "1 process, img/s",
            "multi_images_per_s": "2 processes (gloo), img/s",
            "speedup": "speed-up (x)",
            "efficiency_pct": "scaling efficiency (%)",
            "single_wall_s": "1 process, wall s",
            "multi_wall_s": "2 processes, wall s",
        },
    ),
}


def render_doc(text: str, results_dir: Path = RESULTS) -> str:
    """``text`` with every marked table regenerated from the CSVs in ``results_dir``."""

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in VIEWS:
            raise KeyError(f"unknown table {name!r}; known: {', '.join(VIEWS)}")
        return f"{match[1]}{VIEWS[name](Path(results_dir))}\n{match[4]}"

    return MARKED.sub(fill, text)


def main(paths: list[str]) -> int:
    for path in map(Path, paths):
        text = path.read_text(encoding="utf-8")
        new = render_doc(text)
        if new != text:
            path.write_text(new, encoding="utf-8")
        print(f"{path}: {'regenerated' if new != text else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["docs/benchmarks.md", "docs/train.md"]))
