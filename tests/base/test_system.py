"""What artkit says about the machine: a CUDA build of torch on a machine without a GPU; how many loader processes
it starts."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch

from artkit import system
from artkit.system import (
    CPU_WHEELS,
    MAX_DEFAULT_WORKERS,
    default_workers,
    loader_workers,
    torch_build_note,
    usable_cores,
)


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
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert loader_workers(device) == workers


def test_loader_processes_count_the_cores_the_job_may_use_not_the_machines(monkeypatch):
    """A Slurm job or container given 4 cores of a 64-core node started 8 loader processes for training and 8 for
    validation, each with its own OpenCV threads, on those 4 cores."""
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("ARTKIT_PROCESSES", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 4, 5, 6}, raising=False)
    assert usable_cores() == 4 and loader_workers("cuda") == 4 and default_workers() == 4
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS and Windows: every core
    assert usable_cores() == 64 and loader_workers("cuda") == MAX_DEFAULT_WORKERS


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
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert loader_workers(device) == workers


GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
# allocates, fills and frees a 64 MB block (above the largest block glibc keeps by default) five times, through
# glibc itself (numpy asks the kernel for huge pages), and prints the page faults of the last four
FAULTS_OF_REUSE = """
import ctypes, resource, sys
from artkit.system import keep_freed_memory
print(keep_freed_memory(), file=sys.stderr)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
def fill_and_free():
    block = libc.malloc(64 * 2**20)
    ctypes.memset(block, 1, 64 * 2**20)
    libc.free(block)
fill_and_free()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    fill_and_free()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_of_reuse(malloc: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "ARTKIT_MALLOC"}
    if malloc:
        env["ARTKIT_MALLOC"] = malloc
    done = subprocess.run([sys.executable, "-c", FAULTS_OF_REUSE], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_freed_memory_is_kept_for_reuse_not_faulted_in_again():
    pages = 4 * 64 * 2**20 // os.sysconf("SC_PAGE_SIZE")
    kept = faults_of_reuse(None)  # artkit's setting: the freed block is reused as it is
    assert kept < pages * 0.01
    # as glibc comes, every reuse faults the block in again: page by page, or by 2 MB where the kernel gives every
    # block huge pages (transparent_hugepage=always)
    assert faults_of_reuse("system") > 50 * (kept + 1)


def without_malloc_settings(monkeypatch) -> None:
    for name in (system.MALLOC_ENV, *system._MALLOC_USER_ENV, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ARTKIT_MALLOC", "system"),
        ("MALLOC_MMAP_THRESHOLD_", "131072"),
        ("MALLOC_TRIM_THRESHOLD_", "0"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0"),
    ],
)
def test_the_users_own_malloc_settings_are_left_alone(monkeypatch, variable, value):
    without_malloc_settings(monkeypatch)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(sys, "platform", "linux")
    assert system._malloc_tunable()
    monkeypatch.setenv(variable, value)
    assert not system._malloc_tunable()


def test_malloc_is_tuned_only_with_glibc_and_once_a_process(monkeypatch):
    calls = []
    monkeypatch.setattr(system, "_mallopt_keep", lambda: calls.append(1) or True)
    monkeypatch.setattr(system, "_malloc_tuned", None)
    without_malloc_settings(monkeypatch)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))  # musl, say
    assert system.keep_freed_memory() is False and not calls
    monkeypatch.setattr(system, "_malloc_tuned", None)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("glibc", "2.36"))
    assert system.keep_freed_memory() and system.keep_freed_memory()
    assert calls == [1]


def test_every_command_that_runs_a_model_tunes_malloc_first(monkeypatch):
    from artkit.engine.device import Runtime

    calls = []
    monkeypatch.setattr(system, "keep_freed_memory", lambda: calls.append(1) or True)
    Runtime.create("cpu", "off")
    assert calls == [1]
