"""The random states a resumed run restores: the CPU's always, the GPU's where CUDA was in use."""

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


def test_the_gpus_random_state_is_saved_and_restored(monkeypatch: pytest.MonkeyPatch):
    """Dropout and drop-path draw on the GPU: without its state, a run resumed within an epoch drew other masks."""
    gpu = torch.tensor([1, 2, 3], dtype=torch.uint8)
    restored: list = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "set_rng_state", restored.append)
    state = _weights_only_round_trip(rng_state())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    set_rng_state(state)
    assert [t.tolist() for t in restored] == [[1, 2, 3]]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # resumed on a CPU: the CPU's states only
    set_rng_state(state)
    assert len(restored) == 1
