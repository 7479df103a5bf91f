"""What a resumed run needs besides the weights: the state saved in ``last.pt``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch random states (and this process's GPU's, once CUDA is in use: dropout and
    drop-path draw there) as tensors and plain values (weights_only-safe)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        **({"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_initialized() else {}),
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():  # resumed on a CPU: only the CPU's states
        torch.cuda.set_rng_state(state["cuda"])
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list | tuple) else x


@dataclass(kw_only=True)
class ResumeState:
    """Where a run stands after an epoch: saved in ``last.pt`` as ``train_state``."""

    epoch: int = 0  # epochs finished
    num_updates: int = 0
    optimizer: dict[str, Any] = field(default_factory=dict)
    scaler: dict[str, Any] | None = None
    stopping: dict[str, Any] = field(default_factory=dict)  # EarlyStopping.state()
    model: dict[str, torch.Tensor] | None = None  # the raw weights when EMA weights are what is saved
    rng: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the epochs a --time budget chose

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "scaler": self.scaler,
            "num_updates": self.num_updates,
            **self.stopping,
            "rng": self.rng,
            "model": self.model,
            "extra": self.extra,
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> ResumeState:
        state = ckpt["train_state"]
        return cls(
            epoch=int(ckpt["epoch"]),
            num_updates=int(state["num_updates"]),
            optimizer=state["optimizer"],
            scaler=state.get("scaler"),
            model=state.get("model"),
            rng=state["rng"],
            stopping={k: state[k] for k in ("best_score", "best_epoch", "bad_epochs")},
            extra=state.get("extra") or {},
        )
