"""What artkit says about the machine: a CUDA build of torch on a machine without a GPU; how many loader processes
it starts."""

from __future__ import annotations

import os

import pytest
import torch

from artkit.system import CPU_WHEELS, MAX_DEFAULT_WORKERS, loader_workers, torch_build_note


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


@pytest.mark.parametrize(
    ("cores", "threads", "device", "workers"),
    [
        (2, 2, "cpu", 0),  # the model's threads take every core: images load in the main process
        (32, 16, "cpu", MAX_DEFAULT_WORKERS),  # hyper-threads the model's threads leave free
        (12, 8, "cpu", 4),
        (2, 2, "cuda", 2),  # a GPU runs the model: one process per core
        (64, 16, "cuda", MAX_DEFAULT_WORKERS),
    ],
)
def test_loader_processes_leave_a_cpu_model_its_cores(monkeypatch, cores, threads, device, workers):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("ARTKIT_PROCESSES", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert loader_workers(device) == workers


@pytest.mark.parametrize(
    ("variable", "value", "device", "threads", "workers"),
    [
        ("LOCAL_WORLD_SIZE", "8", "cuda", 1, 2),  # torchrun's 8 processes on 16 cores
        ("ARTKIT_PROCESSES", "4", "cuda", 1, 4),  # 4 folds fanned out
        ("ARTKIT_PROCESSES", "2", "cpu", 4, 4),  # cpu:2 on 16 cores, 4 threads each
        ("ARTKIT_PROCESSES", "junk", "cuda", 1, MAX_DEFAULT_WORKERS),
    ],
)
def test_processes_of_one_job_share_the_cores_for_loading(monkeypatch, variable, value, device, threads, workers):
    """8 folds on 16 cores each started 8 loader processes for training and 8 for validation: 128 in all."""
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert loader_workers(device) == workers
