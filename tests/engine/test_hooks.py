"""Each hook of the training loop on its own: a fake loop, a fake session and a fake clock; no model is trained."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import artkit.engine.hooks.checkpoints as checkpoints
from artkit.engine.budget import TimeBudget
from artkit.engine.config import TrainConfig
from artkit.engine.distributed import SINGLE
from artkit.engine.hooks import EpochEnd, Hook, Step, default_hooks
from artkit.engine.hooks.budget import TimeBudgetHook
from artkit.engine.hooks.checkpoints import CheckpointHook, SaveEveryHook
from artkit.engine.hooks.health import LearningCheckHook
from artkit.engine.hooks.pace import PaceHook
from artkit.engine.hooks.record import ReporterHook, ResultsCsvHook
from artkit.engine.hooks.stopping import EarlyStoppingHook
from artkit.engine.stopping import EarlyStopping
from artkit.engine.validation import Validation
from artkit.progress import Reporter

from helpers import FakeClock


class Recorder(Reporter):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self.calls.append(("epoch_start", epoch, epochs, steps))

    def step(self, step: int, loss: float, lr: float, images_per_s: float) -> None:
        self.calls.append(("step", step))

    def epoch_end(self, row, improved: bool) -> None:
        self.calls.append(("epoch_end", row["epoch"], improved))

    def message(self, text: str) -> None:
        self.calls.append(("message", text))

    def warning(self, text: str) -> None:
        self.calls.append(("warning", text))


class FakeLoop:
    """What a hook sees of :class:`artkit.engine.trainer.TrainLoop`: the session, the reporter, replan and stop."""

    def __init__(self, tmp_path: Path, **cfg) -> None:
        self.s = SimpleNamespace(
            cfg=TrainConfig(data="data", **cfg),
            run_dir=tmp_path,
            dist=SINGLE,
            rows=[],
            stopper=EarlyStopping(mode="max", patience=cfg.get("patience", 2)),
            data=SimpleNamespace(has_val=True, classes=["a", "b", "c"]),
            loaders=SimpleNamespace(train=[None] * 100, train_size=800, val_size=0, img_size=64, cache=None),
            parts=SimpleNamespace(ema=None),
            state=SimpleNamespace(epoch=0, num_updates=0),
        )
        self.reporter = Recorder()
        self.plans: list[tuple] = []
        self.stop_reason = None
        self.warning = None

    def replan(self, epochs: int, num_updates: int | None = None, stop_step: int | None = None) -> None:
        self.plans.append((epochs, stop_step))
        self.s.cfg.epochs = epochs

    def stop(self, reason: str) -> None:
        self.stop_reason = reason


def _val(f1: float, predictions: list[int] | None = None, finite: bool = True) -> Validation:
    predictions = predictions if predictions is not None else [0, 1, 2] * 10
    logits = np.eye(3)[predictions]
    targets = np.array([0, 1, 2] * 10)
    return Validation(metrics={"val_macro_f1": f1}, logits=logits, targets=targets, finite=finite)


def _end(epoch: int, f1: float, **kw) -> EpochEnd:
    return EpochEnd(epoch=epoch, row={"epoch": epoch, "val_macro_f1": f1}, val=_val(f1, **kw))


def _step(step: int, epoch: int = 0, at_update: bool = True, steps: int = 100) -> Step:
    return Step(
        epoch=epoch,
        step=step,
        steps=steps,
        loss=1.0,
        lr=1e-3,
        images_per_s=10.0,
        images=8 * step,
        num_updates=step,
        at_update=at_update,
    )


def test_early_stopping_marks_the_best_and_stops_after_patience(tmp_path: Path):
    loop, hook = FakeLoop(tmp_path, patience=2), EarlyStoppingHook()
    improved = []
    for epoch, f1 in enumerate([0.5, 0.6, 0.55, 0.58], start=1):
        end = _end(epoch, f1)
        hook.on_epoch_end(loop, end)
        improved.append(end.improved)
    assert improved == [True, True, False, False]
    assert loop.stop_reason == "early stop: val_macro_f1 has not improved for 2 epochs"


def test_a_non_finite_epoch_is_never_best(tmp_path: Path):
    loop, hook = FakeLoop(tmp_path), EarlyStoppingHook()
    end = _end(1, 0.9, finite=False)
    hook.on_epoch_end(loop, end)
    assert not end.improved


def test_results_csv_holds_every_row(tmp_path: Path):
    loop = FakeLoop(tmp_path)
    loop.s.rows = [{"epoch": 1, "val_macro_f1": 0.5}, {"epoch": 2, "val_macro_f1": 0.6}]
    ResultsCsvHook().on_epoch_end(loop, _end(2, 0.6))
    assert pd.read_csv(tmp_path / "results.csv")["val_macro_f1"].tolist() == [0.5, 0.6]


def test_the_reporter_hook_forwards_each_point(tmp_path: Path):
    loop, hook = FakeLoop(tmp_path, epochs=4), ReporterHook()
    hook.on_epoch_start(loop, 0)
    assert hook.on_step(loop, _step(1)) is False
    end = _end(1, 0.5)
    end.improved = True
    hook.on_epoch_end(loop, end)
    assert loop.reporter.calls == [("epoch_start", 1, 4, 100), ("step", 1), ("epoch_end", 1, True)]


def test_the_learning_check_warns_once_when_one_class_takes_everything(tmp_path: Path):
    loop, hook = FakeLoop(tmp_path, epochs=10), LearningCheckHook()
    for epoch in (1, 2, 3, 4):
        hook.on_epoch_end(loop, _end(epoch, 0.17, predictions=[0] * 30))
    warnings = [c for c in loop.reporter.calls if c[0] == "warning"]
    assert len(warnings) == 1 and warnings[0][1].startswith("epoch 3: ") and loop.warning
    hook.on_epoch_end(loop, _end(5, 1.0))
    assert loop.warning is None  # it learned after all: the summary says nothing


def test_checkpoints_write_best_then_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    loop, written = FakeLoop(tmp_path), []
    loop.s.saver = SimpleNamespace(save_best=lambda weights, metrics, epoch: written.append(("best", epoch)))
    loop.s.parts.eval_model = lambda: SimpleNamespace(state_dict=dict)
    loop.s.data.val_rows = pd.DataFrame({"id": [f"r{i}" for i in range(30)]})
    monkeypatch.setattr(checkpoints, "save_val_predictions", lambda *a: written.append(("val", None)))
    monkeypatch.setattr(
        checkpoints, "save_last", lambda loop, row, epoch, updates, within=None: written.append(("last", epoch))
    )
    end = _end(1, 0.5)
    end.improved = True
    CheckpointHook().on_epoch_end(loop, end)
    CheckpointHook().on_epoch_end(loop, _end(2, 0.4))
    assert written == [("best", 1), ("val", None), ("last", 1), ("last", 2)]


def started_save_every(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A started --save-every 600 hook on a fake clock, and the list its within-epoch saves go to."""
    clock, saved = FakeClock(), []
    monkeypatch.setattr(checkpoints, "save_last", lambda loop, row, epoch, updates, within=None: saved.append(within))
    loop, hook = FakeLoop(tmp_path), SaveEveryHook(seconds=600, clock=clock)
    hook.on_start(loop)
    return clock, saved, loop, hook


def test_save_every_writes_last_within_epochs_at_updates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    clock, saved, loop, hook = started_save_every(tmp_path, monkeypatch)
    clock.advance(599)
    hook.on_step(loop, _step(10))
    clock.advance(2)
    hook.on_step(loop, _step(11, at_update=False))  # mid-accumulation: the gradients would be lost
    assert saved == []
    hook.on_step(loop, _step(12))
    assert saved == [{"step": 12, "loss_sum": 1.0 * 96, "images": 96}]
    clock.advance(300)
    hook.on_step(loop, _step(13))
    clock.advance(300)
    hook.on_step(loop, _step(100, steps=100))  # the epoch's last step: its own last.pt follows at once
    assert len(saved) == 1


def test_save_every_saves_the_loss_read_now_not_the_last_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """On a GPU a step's loss is up to 16 steps old: the resumed epoch's mean would miss them."""
    clock, saved, loop, hook = started_save_every(tmp_path, monkeypatch)
    clock.advance(601)
    step = dataclasses.replace(_step(12), loss=1.0, images=64, exact=lambda: (2.0, 96))
    hook.on_step(loop, step)
    assert saved == [{"step": 12, "loss_sum": 2.0 * 96, "images": 96}]


@pytest.mark.parametrize("rank1_pace", [0.5, 4.0])
def test_with_several_processes_every_rank_stops_where_rank_0_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rank1_pace: float
):
    """Each rank kept the stop step of its own clock: one left the epoch while the others waited in a collective."""
    import artkit.engine.hooks.budget as budget_hook
    from artkit.engine.distributed import Dist

    said: list = []  # what rank 0 broadcast, in order: rank 1 receives it

    def run(rank: int, pace: float) -> tuple[list[int], list[tuple]]:
        clock, heard = FakeClock(), iter(list(said))
        loop = FakeLoop(tmp_path / str(rank), time="100s", epochs=1)
        loop.s.dist = Dist(rank=rank, world=2)
        monkeypatch.setattr(
            budget_hook, "broadcast", lambda obj, dist: said.append(obj) or obj if rank == 0 else next(heard)
        )
        hook = TimeBudgetHook(TimeBudget(seconds=100, clock=clock))
        hook.on_start(loop)
        hook.on_epoch_start(loop, 0)
        stops = []
        for step in range(1, 101):
            clock.advance(pace)
            if hook.on_step(loop, _step(step)):
                stops.append(step)
                break
        return stops, loop.plans

    rank0 = run(0, 2.0)  # 100 steps of 2 s: the epoch does not fit, the run ends within it
    assert rank0[0] and run(1, rank1_pace) == rank0


def test_the_budget_hook_times_the_first_steps_after_the_device_finished_them(tmp_path: Path):
    """On a GPU the host runs steps ahead: the plan's two timings (step 1, the probe) read the loss first."""
    clock, reads = FakeClock(), []
    loop = FakeLoop(tmp_path, time="1000s", epochs=1)
    hook = TimeBudgetHook(TimeBudget(seconds=1000, clock=clock))
    hook.on_start(loop)
    hook.on_epoch_start(loop, 0)
    for step in range(1, 21):
        clock.advance(1.0)
        hook.on_step(loop, dataclasses.replace(_step(step), exact=lambda step=step: reads.append(step) or (1.0, 8)))
    assert reads == [1, hook.planner.probe_steps()]


def test_the_budget_hook_plans_after_the_probe_and_replans_after_each_epoch(tmp_path: Path):
    clock = FakeClock()
    loop = FakeLoop(tmp_path, time="1000s", epochs=1)
    hook = TimeBudgetHook(TimeBudget(seconds=1000, clock=clock))
    hook.on_start(loop)
    hook.on_epoch_start(loop, 0)
    for step in range(1, 11):
        clock.advance(1.0)  # 100 steps of 1 s: an epoch takes 100 s
        assert hook.on_step(loop, _step(step)) is False
    planned = loop.s.cfg.epochs
    assert loop.plans[0][0] == planned == 9 and "9 epoch(s) fit in the budget" in loop.reporter.calls[-1][1]
    clock.advance(90)
    hook.on_epoch_end(loop, _end(1, 0.5))
    hook.on_epoch_start(loop, 1)
    clock.advance(300)  # three times slower: the plan shrinks at once, and says why
    hook.on_epoch_end(loop, _end(2, 0.5))
    assert loop.s.cfg.epochs < planned
    assert "more than the 100 s planned" in loop.reporter.calls[-1][1]


def test_a_budget_that_not_even_one_epoch_fits_ends_within_it(tmp_path: Path):
    clock = FakeClock()
    loop = FakeLoop(tmp_path, time="50s", epochs=1)
    hook = TimeBudgetHook(TimeBudget(seconds=50, clock=clock))
    hook.on_start(loop)
    hook.on_epoch_start(loop, 0)
    stops = []
    for step in range(1, 101):
        clock.advance(1.0)
        stops.append(hook.on_step(loop, _step(step)))
    first_stop = stops.index(True) + 1
    assert loop.plans[0][1] == first_stop < 50  # the schedule was planned to end at that step


def test_default_hooks_follow_the_options():
    names = [type(h).__name__ for h in default_hooks(TrainConfig(data="d"))]
    assert names == [
        "EarlyStoppingHook",
        "ResultsCsvHook",
        "CheckpointHook",
        "ReporterHook",
        "LearningCheckHook",
        "PaceHook",
    ]
    timed = [type(h).__name__ for h in default_hooks(TrainConfig(data="d", time="1m", save_every="10m"))]
    assert timed[-2:] == ["SaveEveryHook", "TimeBudgetHook"]  # the budget last: it times what the others do
    assert all(isinstance(h, Hook) for h in default_hooks(TrainConfig(data="d")))


@pytest.mark.parametrize(("waited", "kind"), [(5.0, "message"), (60.0, "warning")])
def test_the_pace_is_said_once_and_a_slow_loader_gets_its_fix(tmp_path: Path, waited: float, kind: str):
    loop, hook = FakeLoop(tmp_path), PaceHook()
    loop.s.workers = 2
    row = {"epoch": 1, "seconds": 100.0, "images_per_s": 10.0, "data_wait_s": waited, "val_macro_f1": 0.5}
    hook.on_epoch_end(loop, EpochEnd(epoch=1, row=row, val=None))
    hook.on_epoch_end(loop, EpochEnd(epoch=2, row=row, val=None))
    [(said, text)] = loop.reporter.calls
    assert said == kind and f"kept it waiting {waited / 100:.0%}" in text
    assert ("--workers, now 2" in text) == (kind == "warning")


def _first_epoch(hook: TimeBudgetHook, loop: FakeLoop, clock: FakeClock, step_seconds: list[float]) -> None:
    hook.on_epoch_start(loop, 0)
    for step, seconds in enumerate(step_seconds, start=1):
        clock.advance(seconds)
        hook.on_step(loop, _step(step))


@pytest.mark.parametrize(("later_steps", "replanned"), [(1.0, False), (2.5, True)])
def test_the_first_steps_one_off_costs_are_not_the_budgets_pace(tmp_path: Path, later_steps: float, replanned: bool):
    # a CI failure: a 20-second run timed its cold first step, planned 3 epochs and ended at 8 s
    clock = FakeClock()
    loop = FakeLoop(tmp_path, time="1000s", epochs=1)
    hook = TimeBudgetHook(TimeBudget(seconds=1000, clock=clock))
    hook.on_start(loop)
    _first_epoch(hook, loop, clock, [30.0] + [1.0] * 9 + [later_steps] * 90)  # a cold first step, then 1 s steps
    assert loop.plans[0][0] == 9  # 1 s a step, 100 s epochs: 90 s more of this one and 8 more in the 931 s left
    clock.advance(60)  # the first validation and checkpoint, once
    hook.on_epoch_end(loop, _end(1, 0.5))
    assert (loop.s.cfg.epochs != 9) is replanned  # only a slower pace of the steps themselves changes the plan


def test_with_the_decode_cache_the_pace_is_said_after_the_epoch_that_reads_it(tmp_path: Path):
    loop, hook = FakeLoop(tmp_path, epochs=3), PaceHook()
    loop.s.workers, loop.s.loaders.cache = 0, object()
    filling = {"epoch": 1, "seconds": 100.0, "images_per_s": 10.0, "data_wait_s": 60.0}
    reading = {**filling, "epoch": 2, "data_wait_s": 5.0}
    hook.on_epoch_end(loop, EpochEnd(epoch=1, row=filling, val=None))
    assert loop.reporter.calls == []  # the first epoch decoded every image once: not the run's pace
    hook.on_epoch_end(loop, EpochEnd(epoch=2, row=reading, val=None))
    hook.on_epoch_end(loop, EpochEnd(epoch=3, row=filling, val=None))
    [(said, text)] = loop.reporter.calls
    assert said == "message" and text.startswith("pace (epoch 2)") and "waiting 5%" in text


@pytest.mark.parametrize("cache", ["off", "auto"])
def test_a_slow_loader_with_the_cache_turned_off_is_told_to_turn_it_on(tmp_path: Path, cache: str):
    loop, hook = FakeLoop(tmp_path, epochs=3, cache=cache), PaceHook()
    loop.s.workers, loop.s.loaders.cache = 0, None  # with auto: the images did not fit the cache's bound
    row = {"epoch": 1, "seconds": 100.0, "images_per_s": 10.0, "data_wait_s": 60.0}
    hook.on_epoch_end(loop, EpochEnd(epoch=1, row=row, val=None))
    [(said, text)] = loop.reporter.calls
    assert said == "warning" and "--workers, now 0" in text
    assert ("Decode each image once with --cache auto" in text) == (cache == "off")
