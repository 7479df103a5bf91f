"""The training loop: epochs of training steps and validation, with hooks at fixed points.

:func:`fit` starts a :class:`~artkit.engine.session.Session` (data, model, what trains it) and runs a
:class:`TrainLoop` over it. The loop itself only trains and validates; everything else it does through hooks
(:mod:`artkit.engine.hooks`): early stopping, results.csv, checkpoints, the reporter, the degenerate-run check,
``--save-every`` and the ``--time`` budget. ``artkit train`` enters through :mod:`artkit.engine.train_command`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from artkit.data.sampler import seed_everything
from artkit.engine.budget import TimeBudget
from artkit.engine.config import TrainConfig
from artkit.engine.device import compile_failure, oom_error
from artkit.engine.distributed import broadcast, from_env
from artkit.engine.finish import TrainResult, finish_run
from artkit.engine.hooks import EpochEnd, Hook, Step, default_hooks
from artkit.engine.optim import ema_decay, peak_lr
from artkit.engine.rundata import CONFIG_HEADER, progressive_size, train_loader
from artkit.engine.runs import clear_running, mark_running, remove_run_dir, run_finished
from artkit.engine.session import Session, start_session
from artkit.engine.steps import epoch_updates, train_one_epoch, updates_through
from artkit.engine.validation import validate
from artkit.errors import ArtkitError
from artkit.models.factory import set_backbone_frozen
from artkit.options import load_config, options, save_config
from artkit.progress import Reporter
from artkit.writer import remove_stale_temp_files

RANK_SEED_STRIDE = 100_003  # keeps the (seed, epoch) streams of different ranks apart
RESUMABLE = {info.name for info in options(TrainConfig) if info.spec.resumable}


@dataclass(kw_only=True)
class TrainLoop:
    """Runs a session's epochs and calls its hooks; hooks change the run only through :meth:`replan` and
    :meth:`stop`."""

    s: Session
    reporter: Reporter
    hooks: list[Hook]
    stop_reason: str | None = None  # set by a hook (early stopping): the run ends after this epoch
    warning: str | None = None  # set by a hook: the run looks like it learned nothing (artkit.health)
    # last.pt written within an epoch (--save-every): its steps done, and their loss sum and images
    within: dict[str, Any] = field(default_factory=dict)
    epoch_start_updates: int = 0  # optimiser updates when the current epoch began

    def run(self) -> bool:
        """All epochs; True when a hook stopped the run early."""
        for hook in self.hooks:
            hook.on_start(self)
        self.reporter.start({**self.s.header, "epochs": self.s.cfg.epochs})
        for note in self.s.data.notes:
            self.reporter.message(f"note: {note}")
        epoch = self.s.state.epoch
        while epoch < self.s.cfg.epochs and self.stop_reason is None:
            for hook in self.hooks:
                hook.on_epoch_start(self, epoch)
            end = self.run_epoch(epoch)
            epoch += 1
            for hook in self.hooks:
                hook.on_epoch_end(self, end)
        if self.stop_reason is not None:
            self.reporter.message(self.stop_reason)
        return self.stop_reason is not None

    def stop(self, reason: str) -> None:
        """End the run after the current epoch, saying ``reason``."""
        self.stop_reason = reason

    def replan(self, epochs: int, num_updates: int | None = None, stop_step: int | None = None) -> None:
        """Change the run's length: what is left of the schedule is stretched or shortened to end with the new
        last epoch, or at ``stop_step`` of the current one (the rate never climbs back), from ``num_updates``
        (mid-epoch, the live count; else the count when the epoch began)."""
        s = self.s
        if epochs == s.cfg.epochs and stop_step is None:
            return
        s.cfg = replace(s.cfg, epochs=epochs)
        steps = len(s.loaders.train)
        total = epoch_updates(steps, s.cfg.grad_accum) * epochs
        if stop_step is not None:  # the current epoch is the last, and ends early
            total = self.epoch_start_updates + updates_through(stop_step, steps, s.cfg.grad_accum)
        now = s.state.num_updates if num_updates is None else num_updates
        if s.parts.scheduler is not None:
            s.parts.scheduler.replan(now, total)
            s.parts.scheduler.step_update(now)
        if s.parts.ema is not None:
            s.parts.ema.decay = ema_decay(s.cfg, total)
        self.reporter.planned(epochs)
        if s.dist.main:  # the planned epochs, so that a resumed run follows the same schedule
            save_config(s.cfg, s.run_dir / "config.yaml", header=CONFIG_HEADER)

    def run_epoch(self, epoch: int) -> EpochEnd:
        """Train and validate one epoch; its row is added to the session's rows."""
        s = self.s
        row = self.train_epoch(epoch)
        val = None
        if s.data.has_val:
            try:
                val = validate(
                    s.parts.eval_model(),
                    s.loaders.val,
                    s.data.targets(s.data.val_rows),
                    s.parts.criterion,
                    s.val_rt,
                    self.reporter,
                    s.dist,
                    s.dcfg.img_size,
                )
            except torch.cuda.OutOfMemoryError:  # validation holds a second (fused) copy of the model
                raise oom_error(s.cfg.batch_size) from None
            row.update(val.metrics)
            if not val.finite:
                self.reporter.message(
                    f"epoch {epoch + 1}: validation logits or loss are not finite; it cannot be best.pt"
                )
        s.rows.append(row)
        return EpochEnd(epoch=epoch + 1, row=row, val=val)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch; returns its results.csv row (validation columns still NaN)."""
        s, cfg = self.s, self.s.cfg
        within, self.within = self.within, {}
        first_step = int(within.get("step", 0))
        if not first_step:  # within an epoch, the random state restored from last.pt goes on
            # dropout and Mixup draws depend only on (seed, epoch), and differ between ranks
            seed_everything(cfg.seed + epoch + RANK_SEED_STRIDE * s.dist.rank)
        s.loaders.sampler.set_epoch(epoch)
        self._train_size(epoch)
        steps = len(s.loaders.train)
        s.loaders.sampler.skip(first_step, cfg.batch_size)
        self.epoch_start_updates = s.state.num_updates - updates_through(first_step, steps, cfg.grad_accum)
        frozen = epoch < cfg.freeze_epochs
        if cfg.freeze_epochs:
            set_backbone_frozen(s.parts.model, frozen)
        try:
            stats = train_one_epoch(
                s.parts,
                s.loaders.train,
                s.rt,
                s.state.num_updates,
                self._on_step(epoch),
                frozen,
                first_step,
                (float(within.get("loss_sum", 0.0)), int(within.get("images", 0))),
            )
        except torch.cuda.OutOfMemoryError:
            raise oom_error(cfg.batch_size) from None
        except RuntimeError as exc:
            if (failure := compile_failure(exc)) is not None:
                raise failure from None
            raise
        finally:
            s.loaders.sampler.skip(0, cfg.batch_size)
        s.state.num_updates = stats.num_updates
        nan = float("nan")
        return {
            "epoch": epoch + 1,
            "lr": peak_lr(s.parts.optimizer),
            "train_loss": stats.loss,
            "val_loss": nan,
            "val_acc": nan,
            "val_macro_f1": nan,
            "seconds": stats.seconds,
            "images_per_s": stats.images_per_s * s.dist.world,  # all ranks together
            "data_wait_s": stats.data_wait,  # of the seconds, waiting for the loader
        }

    def _on_step(self, epoch: int):
        """The step callback of an epoch: every hook's on_step; any True ends the epoch (at an update)."""

        def on_step(step: Step) -> bool:
            step.epoch = epoch
            return any([hook.on_step(self, step) for hook in self.hooks])  # a list: every hook sees every step

        return on_step

    def _train_size(self, epoch: int) -> None:
        """Progressive resizing: a new training loader when the epoch's image size changes."""
        s = self.s
        if not s.cfg.img_size_start:
            return
        size = progressive_size(s.cfg.img_size_start, s.dcfg.img_size, epoch, s.cfg.epochs)
        if size != s.loaders.img_size:
            s.loaders.train = train_loader(
                s.cfg, s.data, s.dcfg, size, s.workers, s.rt, s.loaders.sampler, s.loaders.cache
            )
            s.loaders.img_size = size


def fit(
    cfg: TrainConfig, run_dir: Path, reporter: Reporter, resuming: bool = False, budget: TimeBudget | None = None
) -> TrainResult:
    """Train one model (one holdout split, one fold, or all rows with ``full``) into ``run_dir``; with a time
    budget (``budget``, or ``cfg.time`` from now) the number of epochs is planned to fill it."""
    s = start_session(cfg, run_dir, reporter, resuming)
    if resuming and s.dist.main:  # only now that the run can go on does its record change
        save_config(cfg, run_dir / "config.yaml", header=CONFIG_HEADER)
        (run_dir / "summary.json").unlink(missing_ok=True)
    if s.dist.main:
        mark_running(run_dir)  # `artkit runs` shows it as running, not interrupted
    loop = TrainLoop(s=s, reporter=reporter, hooks=default_hooks(s.cfg, budget))
    loop.within = dict(s.state.extra.get("within") or {})
    try:
        stopped_early = loop.run()
        result = finish_run(
            run_dir,
            s.rows,
            s.data,
            s.stopper.best_epoch,
            stopped_early,
            s.saver,
            write=s.dist.main,
            warning=loop.warning,
        )
        for hook in loop.hooks:
            hook.on_end(loop, result)
        return result
    finally:
        if s.dist.main:
            clear_running(run_dir)


# --------------------------------------------------------------------------- entry points


def resume_config(run_dir: Path, overrides: TrainConfig, explicit: set[str]) -> TrainConfig:
    """The run's saved config with the options that may change on resume taken from ``overrides``. A time budget
    applies to a resumed run only when given again (it is then the budget for what is left)."""
    saved = load_config(TrainConfig, run_dir / "config.yaml")
    changed = {k for k in explicit if k not in RESUMABLE and getattr(overrides, k) != getattr(saved, k)}
    if changed:
        raise ArtkitError(
            f"--resume continues a run as it began; these options differ: {', '.join(sorted(changed))}",
            f"only {', '.join('--' + k.replace('_', '-') for k in sorted(RESUMABLE - {'resume'}))} "
            "may change; start a new run otherwise",
        )
    kept = {k: getattr(overrides, k) for k in explicit & RESUMABLE if k != "resume"}
    return replace(saved, **{"time": None, **kept}, resume=None)


def fit_new(cfg: TrainConfig, run_dir: Path, reporter: Reporter, budget: TimeBudget | None = None) -> TrainResult:
    """:func:`fit` into a fresh folder, removed again if no epoch finished (a failed start leaves nothing)."""
    try:
        return fit(cfg, run_dir, reporter, budget=budget)
    except BaseException:
        if from_env().main and not (run_dir / "last.pt").exists():
            remove_run_dir(run_dir)
        raise


def resume_run(cfg: TrainConfig, run_dir: Path, reporter: Reporter, budget: TimeBudget | None = None) -> TrainResult:
    if not (run_dir / "last.pt").exists():
        raise ArtkitError(f"{run_dir} has no last.pt: it never finished an epoch", "start a new run instead")
    if not cfg.time and run_finished(run_dir, cfg.epochs):
        raise ArtkitError(f"{run_dir} already finished {cfg.epochs} epochs", "pass a larger --epochs to continue")
    dist = from_env()
    if dist.main:  # rank 0 tidies; the others would race it for the same files
        remove_stale_temp_files(run_dir)
    broadcast(None, dist)  # every rank starts once the folder is tidy
    return fit(cfg, run_dir, reporter, resuming=True, budget=budget)
