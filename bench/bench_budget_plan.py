"""How much of a ``--time`` budget the epoch planner uses: the planner of artkit.engine.budget driven by a fake
clock through simulated runs, as the time-budget hook drives it (a plan after the first tenth of the first epoch,
checks at every step, a re-plan after every epoch), over many seeds of epoch-time noise.

    python bench/bench_budget_plan.py                       # artkit's constants
    python bench/bench_budget_plan.py --reserve 0.01 --grow-margin 0.02

The simulated run mirrors a measured one (bench/results/time_budget_30m.csv, seed 42 of ad99e77, AMX Xeon): 12 s
from the command's start to the first step, 143 steps an epoch of 70 s (the first 5 s longer: the decode cache
fills), validation 2.5 s, 3 s to finish (last checkpoint, plots), and each epoch's time drawn around the mean
with the measured spread (3 % standard deviation), optionally drifting (``--drift -0.12``: epochs 12 % faster
by the budget's end, as in f06cccb's run of that file). A machine is not involved, so the rows hold for any.

One row per budget in ``--results`` (default bench/results/budget_plan.csv): the mean and worst share of the budget
the runs took (from the command's start to the end of the finish), the mean epochs, and the mean number of times
the plan changed after its first.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results import append_row, invocation

from artkit.engine import budget as plan
from artkit.engine.budget import EpochPlanner, TimeBudget


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(kw_only=True)
class Run:
    """What a simulated run takes, in seconds (defaults: the measured 30-minute run)."""

    startup: float = 12.0
    epoch: float = 70.0
    steps: int = 143
    first_extra: float = 5.0
    validation: float = 2.5
    val_per_train_image: float = 0.25
    finish: float = 3.0
    spread: float = 0.03
    drift: float = 0.0  # how much faster (< 0) or slower (> 0) epochs run by the budget's end than at its start


def simulate(seconds: float, run: Run, rng: random.Random) -> tuple[float, int, int, int]:
    """(seconds from the start to the end of the finish, epochs trained, plan changes after the first, reversals:
    changes whose direction is the opposite of the change before, a schedule stretched and then shortened or the
    other way)."""
    clock = Clock(run.startup)
    planner = EpochPlanner(
        budget=TimeBudget(seconds=seconds, clock=clock, started=0.0),
        steps_per_epoch=run.steps,
        val_per_train_image=run.val_per_train_image,
    )
    planned, epoch = 1_000, 0
    plans = []  # every plan, the first included
    while epoch < planned:
        started = clock()
        trend = 1 + run.drift * min(clock() / seconds, 1.0)
        step_seconds = run.epoch * trend * max(0.5, rng.gauss(1.0, run.spread)) / run.steps
        first = step_seconds + (run.first_extra if epoch == 0 else 0.0)
        last = (0, 0.0)
        for step in range(1, run.steps + 1):
            clock.now += first if step == 1 else step_seconds
            elapsed = clock() - started
            last = (step, elapsed)
            before = planned
            if step < planner.probe_steps():
                continue
            if not planner.epoch_seconds and step == planner.probe_steps():
                planned = planner.from_steps(epoch, step, elapsed, first)
            elif planned > epoch + 1 and planner.out_of_time(step, elapsed):
                planned = epoch + 1
            elif planned == epoch + 1 and planner.stop_step is None:
                planner.stop_within(step, elapsed)
            if planned != before:
                plans.append(planned)
            if planner.stop_step is not None and step >= planner.stop_step:
                break
        clock.now += run.validation
        pace = clock() - started if planner.epoch_seconds else planner.warm_epoch_seconds(*last, first)
        epoch += 1
        before = planned
        planned = max(epoch, planner.after_epoch(epoch, pace, planned))
        if planned != before:
            plans.append(planned)
    steps = [b - a for a, b in zip(plans, plans[1:])]
    reversals = sum((a > 0) != (b > 0) for a, b in zip(steps, steps[1:]))
    return clock() + run.finish, epoch, len(steps), reversals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", default="300,1800,7200", help="seconds, comma-separated")
    p.add_argument("--runs", type=int, default=500, help="simulated runs per budget (seeds 0..N-1)")
    p.add_argument("--reserve", type=float, default=plan.FINISH_RESERVE, help="FINISH_RESERVE to simulate")
    p.add_argument("--grow-margin", type=float, default=plan.GROW_MARGIN, help="GROW_MARGIN to simulate")
    p.add_argument("--overrun-slack", type=float, default=plan.OVERRUN_SLACK, help="OVERRUN_SLACK to simulate")
    p.add_argument("--spread", type=float, default=Run.spread, help="epoch times' standard deviation, a fraction")
    p.add_argument("--drift", type=float, default=Run.drift, help="epoch times' change over the budget, a fraction")
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "budget_plan.csv"))
    args = p.parse_args()
    plan.FINISH_RESERVE, plan.GROW_MARGIN, plan.OVERRUN_SLACK = args.reserve, args.grow_margin, args.overrun_slack
    run = Run(spread=args.spread, drift=args.drift)
    for seconds in map(float, args.budgets.split(",")):
        ends, epochs, changes, reversals = zip(
            *(simulate(seconds, run, random.Random(seed)) for seed in range(args.runs))
        )
        used = [end / seconds for end in ends]
        row = append_row(
            args.results,
            invocation(),
            budget_s=int(seconds),
            reserve=args.reserve,
            grow_margin=args.grow_margin,
            overrun_slack=plan.OVERRUN_SLACK,
            runs=args.runs,
            epoch_s=run.epoch,
            spread=run.spread,
            drift=run.drift,
            mean_used=round(statistics.mean(used), 4),
            worst_used=round(max(used), 4),
            mean_epochs=round(statistics.mean(epochs), 2),
            mean_plan_changes=round(statistics.mean(changes), 2),
            mean_reversals=round(statistics.mean(reversals), 2),
        )
        print(
            f"{seconds:.0f} s: used {row['mean_used']:.1%} on average, {row['worst_used']:.1%} at worst; "
            f"{row['mean_epochs']} epochs; {row['mean_plan_changes']} plan changes, {row['mean_reversals']} reversals"
        )


if __name__ == "__main__":
    main()
