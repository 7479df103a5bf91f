"""What this machine offers: the default number of worker processes, the cache folder, whether its torch build
suits it, and how its C library's malloc keeps freed memory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

MAX_DEFAULT_WORKERS = 8  # beyond this, more loader or scan processes rarely pay for their memory
PROCESSES_ENV = "ARTKIT_PROCESSES"  # set by artkit's launcher in each process it fans out
MALLOC_ENV = "ARTKIT_MALLOC"  # "system" keeps the C library's own allocator settings
MALLOC_CHOICES = ("artkit", "system")  # unset is "artkit"
# glibc's mallopt parameters, and the user's own ways of setting them (which artkit then leaves alone)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MALLOC_USER_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
KEPT_BLOCK_BYTES = 1 << 30  # blocks up to this size come from the heap and stay there when freed
TRIM_THRESHOLD_BYTES = 2**31 - 1  # free heap kept before glibc trims it: the most mallopt's C int takes
_malloc_tuned: bool | None = None  # None: not tried yet in this process


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity where the system keeps one (a Slurm job or container
    given 4 cores of a 64-core node has 4, where ``os.cpu_count()`` says 64), else every core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def default_workers() -> int:
    """Worker processes for data loading and image scans: one per usable CPU core, at most 8."""
    return max(1, min(MAX_DEFAULT_WORKERS, usable_cores()))


def loader_workers(device_type: str) -> int:
    """Loader processes for a command that runs a model on ``device_type``, out of this process's share of the
    cores (:func:`processes_sharing_cores`). On a GPU, one per core, at most 8. On a CPU, the cores torch's
    threads leave free (none on most machines: the images are then loaded in the main process, between steps),
    because loader processes take their time from the model's threads there. On 2 cores, against the mean of a
    bare step before and after, two pairs each: training 0.90x and 1.27x without loader processes, 0.97x and 0.83x
    with two; predict 0.89x and 1.00x a bare forward (cache filled) against 0.77x and 0.93x
    (bench/results/cpu_workers.csv)."""
    cores = usable_cores() // processes_sharing_cores()
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


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse, as jemalloc and tcmalloc (PyTorch's CPU tuning guide) do;
    True when it does. By default glibc hands every freed block over 32 MB back to the kernel, and the next step
    faults its pages in again, zeroed: at 224 px and batch 32, a training step of tf_efficientnet_lite0 on 2 cores
    took 1.9-2.4 s with about 290,000 page faults and 0.9-1.1 s of kernel CPU time, and ran 1.36-1.49x as fast with
    its memory kept; a forward 2.0-2.2x (bench/results/malloc.csv). The cost: up to a quarter more peak memory.
    Once per process (loader processes forked later inherit it); only on Linux with glibc, and not where the user
    set malloc's thresholds or ``ARTKIT_MALLOC=system``; another value of ``ARTKIT_MALLOC`` is an ArtkitError."""
    global _malloc_tuned
    if _malloc_tuned is None:
        _malloc_tuned = _mallopt_keep() if _malloc_tunable() else False
    return _malloc_tuned


def _malloc_tunable() -> bool:
    import platform

    choice = os.environ.get(MALLOC_ENV, "").strip().lower()
    if choice and choice not in MALLOC_CHOICES:  # "off", say: a typo must not leave the setting on unsaid
        from artkit.errors import ArtkitError

        raise ArtkitError(
            f"{MALLOC_ENV}={os.environ[MALLOC_ENV]!r} is not a malloc setting",
            f"set {MALLOC_ENV}=system to keep the C library's own settings, or unset it",
        )
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if choice == "system" or any(os.environ.get(n) for n in _MALLOC_USER_ENV):
        return False
    return "glibc.malloc" not in os.environ.get("GLIBC_TUNABLES", "")


def _mallopt_keep() -> bool:
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    # the mmap threshold first: the trim threshold alone would stop glibc raising the mmap threshold by itself, and
    # every block over 128 KB would then be mapped and faulted in anew
    if not mallopt(_M_MMAP_THRESHOLD, KEPT_BLOCK_BYTES):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


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
