"""``artkit explain``: top classes and a Grad-CAM heat map per image, and a gallery page."""

from __future__ import annotations

from artkit.cli.app import app, console, run_core, show
from artkit.cli.commands import config_command
from artkit.inference.config import ExplainConfig


@config_command(
    app,
    "explain",
    ExplainConfig,
    epilog="Example: artkit explain runs/train/best.pt data/test/TEST_00001.jpg data/test/ -o explain",
)
def explain_command(cfg: ExplainConfig, explicit: set[str]) -> None:
    """Show where the model looks: for each image its top classes and a Grad-CAM heat map (PNG per image and
    explain.html)."""
    from artkit.cli.progress import RichReporter
    from artkit.inference.explain import run_explain

    with RichReporter() as reporter:
        r = run_core(run_explain, cfg, reporter)
    for item in r.items[:10]:
        top = ", ".join(f"{c} {p:.0%}" for c, p in item.top)
        console.print(f"  {item.path}: {top}", soft_wrap=True)
    if len(r.items) > 10:
        console.print(f"  ... and {len(r.items) - 10} more")
    show("[bold green]gallery[/]: {}  ({} images, Grad-CAM on layer {})", r.gallery, len(r.items), r.layer)
