"""The random states a resumed run restores: the CPU's always, each GPU's where CUDA was in use."""

from __future__ import annotations

import io

import pytest
import torch

from artkit.engine.resume import rng_state, set_rng_state


def _weights_only_round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_without_cuda_in_use_only_the_cpus_states_are_kept(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    state = _weights_only_round_trip(rng_state())
    assert "cuda" not in state
    expected = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), expected)


def test_each_gpus_random_state_is_saved_and_restored_on_the_same_gpus(monkeypatch: pytest.MonkeyPatch):
    """Dropout and drop-path draw on the GPU: without its state, a run resumed within an epoch drew other masks."""
    gpus = [torch.tensor([1, 2, 3], dtype=torch.uint8), torch.tensor([4, 5, 6], dtype=torch.uint8)]
    restored: list = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    state = _weights_only_round_trip(rng_state())
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    set_rng_state(state)
    assert [t.tolist() for t in restored[0]] == [[1, 2, 3], [4, 5, 6]]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # resumed on another machine: its GPUs are left
    set_rng_state(state)
    assert len(restored) == 1
