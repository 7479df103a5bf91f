"""What this machine offers: the default number of worker processes, the cache folder, and whether its torch
build suits it."""

from __future__ import annotations

import os
from pathlib import Path

MAX_DEFAULT_WORKERS = 8  # beyond this, more loader or scan processes rarely pay for their memory
PROCESSES_ENV = "ARTKIT_PROCESSES"  # set by artkit's launcher in each process it fans out


def default_workers() -> int:
    """Worker processes for data loading and image scans: one per CPU core, at most 8."""
    return max(1, min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1))


def loader_workers(device_type: str) -> int:
    """Loader processes for a command that runs a model on ``device_type``, out of this process's share of the
    cores (:func:`processes_sharing_cores`). On a GPU, one per core, at most 8. On a CPU, the cores torch's
    threads leave free (none on most machines: the images are then loaded in the main process, between steps),
    because loader processes take their time from the model's threads there. On 2 cores, against the mean of a
    bare step before and after, two pairs each: training 0.90x and 1.27x without loader processes, 0.97x and 0.83x
    with two; predict 0.89x and 1.00x a bare forward (cache filled) against 0.77x and 0.93x
    (bench/results/cpu_workers.csv)."""
    cores = (os.cpu_count() or 1) // processes_sharing_cores()
    if device_type != "cpu":
        return max(1, min(MAX_DEFAULT_WORKERS, cores))
    import torch

    return max(0, min(MAX_DEFAULT_WORKERS, cores - torch.get_num_threads()))


def processes_sharing_cores() -> int:
    """The processes of one job that share this machine's cores: torchrun's LOCAL_WORLD_SIZE, or the k-fold
    processes artkit fans out (ARTKIT_PROCESSES); each takes its share for its loader processes (8 folds on 16
    cores took 8 loader processes each, training and validation: 128 in all)."""
    for name in ("LOCAL_WORLD_SIZE", PROCESSES_ENV):
        try:
            count = int(os.environ.get(name, ""))
        except ValueError:
            continue
        if count > 0:
            return count
    return 1


def cache_dir() -> Path:
    """Where artkit keeps caches: ``$ARTKIT_CACHE_DIR``, else ``~/.cache/artkit``."""
    env = os.environ.get("ARTKIT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "artkit"


CPU_WHEELS = "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu"


def torch_build_note() -> str | None:
    """A note when this torch is a CUDA build on a machine without a GPU: its CUDA libraries (about 3 GB) are
    unused, and the CPU wheels do the same work."""
    import torch

    if torch.version.cuda and not torch.cuda.is_available():
        return (
            f"this torch is a CUDA {torch.version.cuda} build, but the machine has no GPU: the CPU wheels are "
            f"about 3 GB smaller and as fast here ({CPU_WHEELS})"
        )
    return None
