"""The ``artkit train`` entry point: a new run, k-fold runs, or a resumed run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from artkit.engine import kfold
from artkit.engine.budget import TimeBudget
from artkit.engine.config import TrainConfig, parse_duration
from artkit.engine.device import resolve_device
from artkit.engine.distributed import Dist, backend_for, broadcast, from_env, init, shutdown
from artkit.engine.finish import TrainResult
from artkit.engine.loggers import with_loggers
from artkit.engine.runs import new_run_dir
from artkit.engine.session import validate_config
from artkit.engine.trainer import fit_new, resume_config, resume_run
from artkit.errors import ArtkitError
from artkit.progress import Reporter


def adopt_weights_model(cfg: TrainConfig, explicit: set[str], reporter: Reporter) -> TrainConfig:
    """A weights file that names its model decides ``--model`` (a tf_ and a plain EfficientNet differ in padding
    and normalisation); an explicit ``--model`` that disagrees with it is refused."""
    if not cfg.weights:
        return cfg
    from artkit.models.weights import holds_random_init, read_weights_meta

    path = cfg.weights
    meta = read_weights_meta(path)
    model = meta.get("model")
    if holds_random_init(meta):  # the same as --no-pretrained, and trained as such (no layer decay)
        reporter.message(
            f"--weights {path} holds a random init (weights save --no-pretrained): training from scratch, "
            "as with --no-pretrained"
        )
        cfg = replace(cfg, weights=None, pretrained=False)
    if not model or model == cfg.model:
        return cfg
    if "model" in explicit:
        raise ArtkitError(
            f"{path} holds weights of {model}, not {cfg.model}",
            f"leave out --model (the file's model is used) or pass --model {model}",
        )
    reporter.message(f"--weights {path}: model {model} (from the file)")
    return replace(cfg, model=model)


def train(
    cfg: TrainConfig, reporter: Reporter | None = None, explicit: set[str] | None = None, started: float | None = None
) -> TrainResult:
    """Run ``artkit train``: a new run, k-fold runs, or a resumed run (``cfg.resume``). ``explicit`` names the
    options the user set, so that resuming can check that nothing else changed. A ``--time`` budget counts from
    ``started`` (a reading of :func:`artkit.engine.budget.now`; the command passes its own start, so that the
    imports count too) or from here, setup included."""
    budget = TimeBudget(seconds=parse_duration(cfg.time), started=started) if cfg.time else None
    resume_dir = Path(cfg.resume) if cfg.resume else None
    if resume_dir is not None:
        if not (resume_dir / "config.yaml").exists():
            raise ArtkitError(
                f"{resume_dir} is not an artkit run directory (no config.yaml)",
                "pass the run folder, e.g. --resume runs/train2",
            )
        cfg = resume_config(resume_dir, cfg, explicit or set())
    dist = join_job(cfg)
    # with several processes rank 0 reports and logs; the others work quietly
    reporter = with_loggers(reporter or Reporter(), cfg.logger) if dist.main else Reporter()
    try:
        result = _train(cfg, resume_dir, reporter, explicit or set(), budget)
    except BaseException:
        reporter.close(failed=True)
        raise
    finally:
        if dist.active:
            shutdown()
    reporter.close()
    return result


def join_job(cfg: TrainConfig) -> Dist:
    """This process's place in a torchrun job, joined (a single process: nothing to join)."""
    dist = from_env()
    if dist.active:
        rt_type = resolve_device(cfg.device).type
        init(dist, backend_for(cfg.dist_backend, rt_type))
    return dist


def _train(
    cfg: TrainConfig, resume_dir: Path | None, reporter: Reporter, explicit: set[str], budget: TimeBudget | None
) -> TrainResult:
    if resume_dir is not None:
        if cfg.folds and cfg.fold is None:
            return kfold.train_all_folds(cfg, resume_dir, reporter, resuming=True, budget=budget)
        return resume_run(cfg, resume_dir, reporter, budget)
    cfg = adopt_weights_model(cfg, explicit, reporter)
    validate_config(cfg)
    if cfg.folds:
        return kfold.train_folds(cfg, reporter, budget)
    dist = from_env()
    run_dir = broadcast(new_run_dir(cfg.out, cfg.name) if dist.main else None, dist)  # one folder, made by rank 0
    return fit_new(cfg, run_dir, reporter, budget)
