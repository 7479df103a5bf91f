"""Wall time of ``artkit eval`` (with its report.html) and ``artkit explain`` on a run's validation split,
against ``artkit predict`` over the same images in the same invocation, plus screenshots of report.html.

    python bench/bench_explain.py RUN_DIR [--explain 50] [--shots docs/img]

RUN_DIR is a finished ``artkit train`` run (best.pt, split.csv). The reference, ``predict``, does the same
forward passes (same TTA) and writes only a CSV, so ``eval / predict`` is what the scoring, plots, top-loss
Grad-CAM panels and feature map cost on top. Screenshots need Chromium (``--shots``). The three timings are
also appended as rows to ``--results`` (default bench/results/explain.csv).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "artkit", *args], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def screenshot(page: Path, out: Path, height: int) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        raise SystemExit("--shots needs chromium")
    with tempfile.TemporaryDirectory() as profile:
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}"]
        flags += [f"--window-size=1200,{height}", "--virtual-time-budget=5000", f"--screenshot={out.resolve()}"]
        subprocess.run([browser, *flags, page.resolve().as_uri()], check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--explain", type=int, default=50, help="how many validation images to explain")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--shots", type=Path, help="folder for report-top.png and report-top-losses.png")
    p.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results" / "explain.csv")
    args = p.parse_args(argv)
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", HF_HUB_OFFLINE="1")
    work = Path(tempfile.mkdtemp(prefix="bench_explain_"))
    split = pd.read_csv(args.run / "split.csv")
    val = split[split["split"] == "val"].rename(columns={"path": "img_path", "label": "artist"})
    val[["id", "img_path", "artist"]].to_csv(work / "val.csv", index=False)
    val.head(args.explain)[["id", "img_path"]].to_csv(work / "explain.csv", index=False)
    ckpt = str(args.run / "best.pt")
    common = ["--workers", str(args.workers)]
    predict_s = timed(["predict", ckpt, "--csv", str(work / "val.csv"), "-o", str(work / "p.csv"), *common], env)
    eval_s = timed(["eval", ckpt, "--out", str(work / "eval"), *common], env)
    explain_s = timed(["explain", ckpt, "--csv", str(work / "explain.csv"), "-o", str(work / "explain")], env)
    n = len(val)
    print(f"validation images: {n}; explained: {min(n, args.explain)}")
    print(f"predict (reference): {predict_s:.1f} s")
    print(f"eval with report.html: {eval_s:.1f} s = {eval_s / predict_s:.2f}x predict")
    per_image = explain_s / min(n, args.explain) / (predict_s / n)
    print(f"explain: {explain_s:.1f} s = {per_image:.1f}x predict's time per image (start-up included)")
    from results import append_row, invocation  # bench/results.py, beside this script

    for step, images, seconds, ratio in (
        ("artkit predict (reference)", n, predict_s, "1.00x"),
        ("artkit eval (with report.html)", n, eval_s, f"{eval_s / predict_s:.2f}x"),
        ("artkit explain (start-up included)", min(n, args.explain), explain_s, f"{per_image:.1f}x per image"),
    ):
        append_row(args.results, invocation(), step=step, images=images, seconds=f"{seconds:.1f}", vs_predict=ratio)
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
        page = work / "eval" / "report.html"
        screenshot(page, args.shots / "report-top.png", 1500)
        text = page.read_text(encoding="utf-8")
        # the top-losses section alone: the page cut from its heading, styles kept
        head, body = text.split("<body>", 1)
        section = body[body.index('<h2 id="top-losses">') :]
        section = section[: section.index("<h2 ", 1)] if "<h2 " in section[1:] else section
        (work / "eval" / "top-losses.html").write_text(f"{head}<body>\n{section}\n</body></html>", encoding="utf-8")
        screenshot(work / "eval" / "top-losses.html", args.shots / "report-top-losses.png", 1300)
        print(f"screenshots: {args.shots}/report-top.png, report-top-losses.png")
    print(f"outputs: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
