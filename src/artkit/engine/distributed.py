"""Training on several processes with PyTorch's own engine (torch.distributed, DistributedDataParallel), as
``torchrun`` starts them: NCCL on CUDA, gloo on CPU. Rank 0 writes and prints; every rank computes.

Sampling stays exact: each epoch's order is drawn once from (seed, epoch), as a single process draws it, and
split across ranks, so the union of what the ranks see is what one process would see.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from artkit.errors import ArtkitError

BACKENDS = ("auto", "nccl", "gloo")


@dataclass(frozen=True, kw_only=True)
class Dist:
    """This process's place in the job (a single process is rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()


def from_env() -> Dist:
    """The job torchrun describes in RANK, WORLD_SIZE and LOCAL_RANK (a single process without them)."""
    try:
        if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return SINGLE
        dist = Dist(
            rank=int(os.environ["RANK"]),
            world=int(os.environ["WORLD_SIZE"]),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError:
        raise ArtkitError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers "
            f"(got {os.environ.get('RANK')!r}, {os.environ.get('WORLD_SIZE')!r}, {os.environ.get('LOCAL_RANK')!r})",
            "unset them, or start with torchrun",
        ) from None
    if not 0 <= dist.rank < dist.world:
        raise ArtkitError(f"RANK {dist.rank} is outside a job of WORLD_SIZE {dist.world}", "unset RANK and WORLD_SIZE")
    return dist


def backend_for(requested: str, device_type: str) -> str:
    if requested not in BACKENDS:
        raise ArtkitError(f"unknown --dist-backend '{requested}'", f"choose one of: {', '.join(BACKENDS)}")
    if requested == "nccl" and device_type != "cuda":
        raise ArtkitError(
            "--dist-backend nccl needs CUDA GPUs, and this run is on the CPU",
            "use --dist-backend gloo (or auto) for CPU processes",
        )
    if requested == "auto":
        return "nccl" if device_type == "cuda" else "gloo"
    return requested


def init(dist: Dist, backend: str) -> None:
    """Join the process group (once)."""
    import torch.distributed as td

    if not dist.active or td.is_initialized():
        return
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:  # RANK and WORLD_SIZE left over from another job: joining would wait for peers that never come
        raise ArtkitError(
            f"RANK={os.environ.get('RANK')} and WORLD_SIZE={os.environ.get('WORLD_SIZE')} are set, but "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not, so there is no job to join",
            "unset RANK and WORLD_SIZE (left over from another job?), or start with torchrun or --devices",
        )
    if backend == "nccl":  # before any collective: each rank's NCCL calls go to its own GPU, not all to cuda:0
        import torch

        from artkit.engine.device import gpu_for_rank

        torch.cuda.set_device(gpu_for_rank(dist.local_rank))
    try:
        td.init_process_group(backend=backend, rank=dist.rank, world_size=dist.world)
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ArtkitError(
            f"rank {dist.rank} could not join the {dist.world}-process job ({first})",
            "check MASTER_ADDR/MASTER_PORT or the rendezvous endpoint; a port may be in use",
        ) from None


def shutdown() -> None:
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()


def broadcast(obj: Any, dist: Dist) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not dist.active:
        return obj
    import torch.distributed as td

    box = [obj if dist.main else None]
    td.broadcast_object_list(box, src=0)
    return box[0]


def gather_rows(indices: np.ndarray, values: np.ndarray, dist: Dist, total: int) -> np.ndarray:
    """Every rank's rows of ``values`` (at ``indices`` of the whole) assembled in order, on every rank."""
    if not dist.active:
        return values
    import torch.distributed as td

    parts: list = [None] * dist.world
    td.all_gather_object(parts, (indices, values))
    whole = np.empty((total, *values.shape[1:]), dtype=values.dtype)
    seen = np.zeros(total, dtype=bool)
    for idx, vals in parts:
        whole[idx] = vals
        seen[idx] = True
    if not seen.all():
        raise ArtkitError(f"validation rows missing after gathering ({int((~seen).sum())} of {total})")
    return whole


class RankBatches:
    """This rank's batches of an epoch: the single-process order of ``sampler`` (an EpochSampler) split across
    ranks, in as many batches on every rank (DistributedDataParallel steps in lockstep).

    Rank r takes every world-th sample from position r; its share is cut into ceil(largest share / batch size)
    batches of nearly equal size. ``even`` drops the odd sample of a batch (Mixup and CutMix pair samples).
    """

    def __init__(self, sampler, dist: Dist, batch_size: int, even: bool = False) -> None:
        self.sampler, self.dist, self.batch_size, self.even = sampler, dist, batch_size, even
        self.skipped = 0  # batches of the epoch left out at its start

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def skip(self, steps: int, batch_size: int | None = None) -> None:
        """Leave out the epoch's first ``steps`` batches (done before a run resumed within the epoch); 0: none."""
        self.skipped = steps

    def __len__(self) -> int:
        largest = -(-len(self.sampler) // self.dist.world)
        return max(1, -(-largest // self.batch_size))

    def shard(self) -> list[tuple[int, int]]:
        order, seeds = self.sampler.epoch_order()
        r, w = self.dist.rank, self.dist.world
        return list(zip(order[r::w].tolist(), seeds[r::w].tolist()))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        mine = self.shard()
        for part in np.array_split(np.arange(len(mine)), len(self))[self.skipped :]:
            batch = [mine[i] for i in part]
            if self.even and len(batch) % 2:
                batch = batch[:-1]
            # every rank must take every step; only a batch size of 1 (or 2 with Mixup) can leave one empty
            yield batch or mine[: 2 if self.even else 1]


def shard_indices(n: int, dist: Dist) -> np.ndarray:
    """The validation rows of this rank: every world-th row from position rank (each row on exactly one rank)."""
    return np.arange(n)[dist.rank :: dist.world]
