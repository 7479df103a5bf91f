"""The time budget as a contract, tested on a fake clock: the schedule is stretched or shortened, never restarted,
re-plans are damped, a run whose single epoch does not fit is planned and stopped within that epoch."""

from __future__ import annotations

import importlib.util
import random
import statistics
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import artkit.engine.budget as budget_module
from artkit.engine.budget import EpochPlanner, TimeBudget
from artkit.engine.schedule import StretchedSchedule

from helpers import TINY, FakeClock, artkit, make_dacon


def _cosine(nominal: int, warmup: int, lr: float = 1.0) -> tuple[StretchedSchedule, torch.optim.Optimizer]:
    from timm.scheduler import CosineLRScheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    timm_sched = CosineLRScheduler(
        opt, t_initial=nominal, lr_min=0.0, warmup_t=warmup, warmup_lr_init=0.01, t_in_epochs=False
    )
    return StretchedSchedule(timm_sched, nominal, warmup), opt


def _lrs(schedule: StretchedSchedule, opt, updates: range, replans: dict[int, int]) -> list[float]:
    out = []
    for u in updates:
        if u in replans:
            schedule.replan(u, replans[u])
        schedule.step_update(u)
        out.append(opt.param_groups[0]["lr"])
    return out


def test_a_replan_never_makes_the_rate_climb_back():
    schedule, opt = _cosine(nominal=100, warmup=10)
    # planned 100 updates; at 40 the plan grows to 160, at 90 it shrinks to 120, at 110 it grows to 150
    lrs = _lrs(schedule, opt, range(0, 151), {40: 160, 90: 120, 110: 150})
    after_warmup = lrs[10:]
    assert all(b <= a + 1e-12 for a, b in zip(after_warmup, after_warmup[1:])), "the rate rose after the warmup"
    assert lrs[150] == pytest.approx(0.0, abs=1e-9) and 0 < lrs[149] < 1e-4  # it ends where the last plan ends
    rebuilt, opt2 = _cosine(nominal=160, warmup=10)  # what rebuilding the cosine for 160 did: a jump up at 40
    rebuilt.step_update(40)
    assert opt2.param_groups[0]["lr"] > lrs[39]


def test_a_replan_within_the_warmup_keeps_the_warmup():
    schedule, opt = _cosine(nominal=100, warmup=10)
    lrs = _lrs(schedule, opt, range(0, 21), {3: 400})
    plain, opt2 = _cosine(nominal=100, warmup=10)
    assert lrs[:11] == pytest.approx(_lrs(plain, opt2, range(0, 11), {}))


def test_a_schedule_cut_short_ends_at_once():
    schedule, opt = _cosine(nominal=100, warmup=0)
    lrs = _lrs(schedule, opt, range(0, 60), {50: 50})
    assert lrs[50] == pytest.approx(0.0, abs=1e-9) and lrs[49] > 0.0


def test_schedule_state_round_trips():
    schedule, _ = _cosine(nominal=100, warmup=10)
    schedule.replan(40, 160)
    again, _ = _cosine(nominal=100, warmup=10)
    again.load_state(schedule.state()["segments"])
    assert [again.position(u) for u in range(0, 170, 7)] == [schedule.position(u) for u in range(0, 170, 7)]


def _simulation():
    """bench/bench_budget_plan.py (a script outside the package), loaded by path."""
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_budget_plan.py"
    spec = importlib.util.spec_from_file_location("bench_budget_plan", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_30_minute_budget_is_used_to_within_3_percent_on_average_and_never_overrun():
    """Simulated runs like the measured 30-minute one (70 s epochs, 3 % spread): the constants before ended them
    with 5 % of the budget unused on average, most of an epoch."""
    sim = _simulation()
    runs = [sim.simulate(1800, sim.Run(), random.Random(seed)) for seed in range(60)]
    used = [end / 1800 for end, *_ in runs]
    assert statistics.mean(used) >= 0.97 and max(used) <= 1.0, (statistics.mean(used), max(used))
    assert statistics.mean(reversals for *_, reversals in runs) < 0.2  # the plan does not go back and forth


def _planner(seconds: float, clock: FakeClock, steps: int = 100) -> EpochPlanner:
    return EpochPlanner(budget=TimeBudget(seconds=seconds, clock=clock), steps_per_epoch=steps, val_per_train_image=0)


def test_replans_are_damped_when_the_machine_speeds_up():
    clock = FakeClock()
    planner = _planner(1000, clock)
    clock.advance(10)  # the first 10 steps (the probe) took 10 s: an epoch takes 100 s
    planned = planner.from_steps(0, 10, 10.0)
    plans = [planned]
    for done, seconds in enumerate([90, 50, 50, 50, 50, 50, 50], start=1):  # the machine got twice as fast
        clock.advance(seconds)
        planned = max(done, planner.after_epoch(done, seconds, planned))
        plans.append(planned)
    growth = [b - a for a, b in zip(plans, plans[1:])]
    assert max(growth) <= 1, plans  # one epoch more at a time, never a jump
    assert plans[-1] > plans[0]


def test_a_slower_machine_shrinks_the_plan_at_once():
    clock = FakeClock()
    planner = _planner(1000, clock)
    clock.advance(10)
    planned = planner.from_steps(0, 10, 10.0)
    clock.advance(90)
    planned = planner.after_epoch(1, 100, planned)
    clock.advance(300)  # the load tripled
    shrunk = planner.after_epoch(2, 300, planned)
    assert shrunk < planned and planner.assumed_seconds > 100


def test_an_epoch_longer_than_the_budget_is_planned_in_steps():
    clock = FakeClock()
    planner = _planner(120, clock, steps=1000)
    probe = planner.probe_steps()
    clock.advance(probe * 0.5)  # 0.5 s a step: an epoch takes 500 s of a 120 s budget
    assert planner.from_steps(0, probe, probe * 0.5) == 1
    left = planner.budget.left()
    assert planner.stop_step == probe + int(left // 0.5)
    assert planner.stop_step < 1000


def test_a_last_epoch_that_slows_down_stops_within_itself():
    clock = FakeClock()
    planner = _planner(1000, clock)
    clock.advance(10)
    planner.from_steps(0, 10, 10.0)  # 100 s epochs: 9 fit
    assert planner.stop_step is None
    clock.advance(900)  # nine epochs later, 90 s left; the last epoch's first 20 steps took 80 s
    assert planner.stop_within(20, 80.0) == 20 + int(planner.budget.left() // 4.0)


@pytest.mark.slow
def test_a_train_run_whose_epoch_does_not_fit_stops_within_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import time

    monkeypatch.setattr(budget_module, "now", lambda: time.perf_counter() * 5000)  # every step looks very slow
    data = make_dacon(tmp_path / "data", per_class=(20, 20, 20))
    r = artkit("train", data, *TINY, "--time", "1m", "--no-ema", "--out", tmp_path / "runs")
    text = " ".join(r.output.split())
    assert "more than the budget: the run trains 3 of" in text and "the schedule runs over steps" in text, r.output
    results = pd.read_csv(tmp_path / "runs" / "train" / "results.csv")
    assert len(results) == 1 and results["lr"].iloc[-1] == pytest.approx(1e-6)


def test_time_with_folds_and_devices_is_for_all_folds():
    from artkit.engine.launch import fold_time

    clock = FakeClock()
    budget = TimeBudget(seconds=60, clock=clock)
    left = budget.left()
    assert fold_time(budget, 3, 1) == f"{left / 3:.1f}s"  # one device: three waves, as without --devices
    assert fold_time(budget, 3, 2) == f"{left / 2:.1f}s"  # two devices: two waves
    clock.advance(left / 3)
    assert fold_time(budget, 2, 1) == f"{(left - left / 3) / 2:.1f}s"
