"""What artkit says about the machine: a CUDA build of torch on a machine without a GPU."""

from __future__ import annotations

import pytest
import torch

from artkit.system import CPU_WHEELS, torch_build_note


def test_a_cuda_build_without_a_gpu_is_noted(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    note = torch_build_note()
    assert note and "CUDA 12.4 build" in note and CPU_WHEELS in note
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert torch_build_note() is None  # it has a GPU: the build is the right one
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_build_note() is None  # the CPU wheels already
