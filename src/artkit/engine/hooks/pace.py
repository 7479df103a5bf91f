"""What sets the pace of a run, said once after its first epoch: the model, or the data loader that keeps it
waiting (decoding and augmenting images on too few cores)."""

from __future__ import annotations

from artkit.engine.hooks.base import EpochEnd, Hook

LOADER_BOUND = 0.25  # of an epoch spent waiting for the loader: beyond it, the loader sets the pace


class PaceHook(Hook):
    """After the session's first epoch (its second, when the decode cache is on and there is one: the first may
    have filled the cache, which later epochs only read): the model's images/s, and how long the loader kept it
    waiting; when that is a large part of the epoch, the fix."""

    def __init__(self) -> None:
        self.said = False
        self.epochs = 0

    def on_epoch_end(self, loop, end: EpochEnd) -> None:
        if self.said:
            return
        self.epochs += 1
        s = loop.s
        cached = s.loaders.cache is not None
        if cached and self.epochs == 1 and end.epoch < s.cfg.epochs:
            return
        self.said = True
        row = end.row
        seconds, waited = row.get("seconds") or 0.0, row.get("data_wait_s") or 0.0
        if seconds <= 0:
            return
        share = waited / seconds
        model_speed = row["images_per_s"] * seconds / max(seconds - waited, 1e-9)
        line = (
            f"pace (epoch {end.epoch}): the model trains {model_speed:.0f} images/s; the loader kept it waiting "
            f"{share:.0%} of the epoch"
        )
        if share < LOADER_BOUND:
            loop.reporter.message(line)
            return
        # with --cache auto and no cache, the images did not fit its bound: the header said so
        fixes = ["decode each image once with --cache auto"] if s.cfg.cache == "off" else []
        fixes += [
            f"give it more processes (--workers, now {s.workers}) if cores are idle",
            "store the images smaller: decoding large JPEGs costs the most",
        ]
        advice = "; ".join(fixes)
        loop.reporter.warning(f"{line}: the data loader sets the pace. {advice[0].upper()}{advice[1:]}")
