"""--amp auto per machine and phase: fp32 where the CPU has no bf16 instructions, bf16 inference (and fp32
training) where it has AMX or AVX512-BF16, and the header says which and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from artkit.engine import device as dev
from artkit.engine.device import Runtime, choose_amp, cpu_bf16_units
from artkit.errors import ArtkitError

from helpers import TINY, artkit

CPU = torch.device("cpu")


@pytest.mark.parametrize("phase", ["train", "inference"])
def test_auto_is_fp32_where_the_cpu_has_no_bf16_instructions(monkeypatch, phase: str):
    monkeypatch.setattr(dev, "cpu_bf16_units", lambda: None)
    dtype, why = choose_amp("auto", CPU, phase)
    assert dtype is None and why == "auto: this CPU has no bf16 instructions (AMX or AVX512-BF16)"


@pytest.mark.parametrize("units", ["AMX", "AVX512-BF16"])
def test_auto_runs_inference_in_bf16_and_training_in_fp32_with_bf16_instructions(monkeypatch, units: str):
    monkeypatch.setattr(dev, "cpu_bf16_units", lambda: units)
    speed = dev.CPU_BF16_SPEED[units]
    dtype, why = choose_amp("auto", CPU, "inference")
    assert dtype is torch.bfloat16 and f"{units}; bf16 inference ran {speed['inference']:.2f}x fp32" in why
    dtype, why = choose_amp("auto", CPU, "train")
    assert dtype is None and f"{speed['train']:.2f}x fp32 even with {units}" in why
    assert Runtime.create("cpu", "auto", phase="inference").amp_name.startswith(f"bfloat16 (auto: {units};")


@pytest.mark.parametrize(
    ("bf16", "dtype", "why"), [(True, torch.bfloat16, "has bf16"), (False, torch.float16, "no bf16")]
)
def test_auto_on_a_gpu_says_which_half_precision_and_why(monkeypatch, bf16: bool, dtype, why: str):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    picked, reason = choose_amp("auto", torch.device("cuda"), "train")
    assert picked is dtype and reason.startswith("auto: this GPU ") and why in reason


def tf32_products() -> bool:
    return torch.get_float32_matmul_precision() == "high"


@pytest.fixture
def gpu_settings(monkeypatch):
    """cuDNN's benchmark and TF32 matrix products off, restored after the test."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(saved)


def test_a_gpu_run_lets_cudnn_pick_its_fastest_algorithms_and_fp32_products_use_tensor_cores(monkeypatch, gpu_settings):
    monkeypatch.setattr(dev, "resolve_device", lambda spec: torch.device("cuda"))
    Runtime.create("cuda", "off")
    assert torch.backends.cudnn.benchmark and tf32_products()
    matmul = torch.backends.cuda.matmul
    assert matmul.allow_tf32  # the old flag still reads (torch.compile's inductor reads it), and agrees
    if hasattr(matmul, "fp32_precision"):
        assert matmul.fp32_precision == "tf32"


def test_a_cpu_run_leaves_the_gpu_settings_alone(gpu_settings):
    Runtime.create("cpu", "off")
    assert not torch.backends.cudnn.benchmark and not tf32_products()


def test_the_torch_the_package_allows_has_the_loss_scaler_of_fp16_training():
    """torch.amp.GradScaler("cuda") came with torch 2.3; the package allowed 2.1, where fp16 training (--amp auto
    on a T4 or V100) would stop at its first step."""
    import re

    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    floor = re.search(r'"torch>=(\d+)\.(\d+)', text)
    assert floor and (int(floor[1]), int(floor[2])) >= (2, 3)
    assert hasattr(torch.amp, "GradScaler")


def test_auto_takes_fp16_on_a_gpu_that_only_emulates_bf16(monkeypatch):
    """torch counts a T4 or V100, which emulate bf16 slowly, as having it unless asked not to."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    picked, reason = choose_amp("auto", torch.device("cuda"), "train")
    assert picked is torch.float16 and "no bf16" in reason


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "units"),
    [(True, True, "AMX"), (False, True, "AVX512-BF16"), (False, False, None), (RuntimeError, True, "AVX512-BF16")],
)
def test_the_bf16_instructions_are_read_from_torch_amx_first(monkeypatch, amx, avx512_bf16, units):
    def answer(value):
        def check():
            if value is RuntimeError:
                raise RuntimeError("cpuinfo failed")
            return value

        return check

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", answer(amx), raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", answer(avx512_bf16), raising=False)
    assert cpu_bf16_units() == units


def test_an_older_torch_without_the_checks_counts_as_no_bf16_instructions(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert cpu_bf16_units() is None


def test_a_chosen_precision_is_kept_and_given_no_reason(monkeypatch):
    monkeypatch.setattr(dev, "cpu_bf16_units", lambda: None)
    assert choose_amp("bf16", CPU, "train") == (torch.bfloat16, "")
    assert choose_amp("off", CPU, "inference") == (None, "")
    with pytest.raises(ArtkitError, match="unknown --amp"):
        choose_amp("fp8", CPU)


@pytest.mark.slow
def test_the_run_header_says_what_amp_auto_chose_and_why(dacon: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(dev, "cpu_bf16_units", lambda: None)
    out = artkit("train", dacon, *TINY, "--epochs", "1", "--device", "cpu", "--out", tmp_path).output
    assert "amp off (auto: this CPU has no bf16 instructions (AMX or AVX512-BF16))" in " ".join(out.split())


@pytest.mark.slow
def test_a_training_run_validates_at_inference_precision(dacon: Path, tmp_path: Path, monkeypatch):
    """On a CPU whose bf16 units slow down a training step but speed up a forward, --amp auto trains in fp32 and
    validates in bf16, and says so; a precision the user chose holds for both."""
    from artkit.engine import trainer

    monkeypatch.setattr(dev, "cpu_bf16_units", lambda: "AMX")
    validated = []
    real = trainer.validate

    def validate(model, loader, targets, criterion, rt, *args):
        validated.append(rt.amp_dtype)
        return real(model, loader, targets, criterion, rt, *args)

    monkeypatch.setattr(trainer, "validate", validate)
    out = " ".join(artkit("train", dacon, *TINY, "--epochs", "1", "--device", "cpu", "--out", tmp_path).output.split())
    speed = dev.CPU_BF16_SPEED["AMX"]
    assert f"amp off (auto: bf16 train ran {speed['train']:.2f}x fp32 even with AMX)" in out
    assert f"validation amp bfloat16 (auto: AMX; bf16 inference ran {speed['inference']:.2f}x fp32" in out
    assert validated == [torch.bfloat16]
    validated.clear()
    out = artkit("train", dacon, *TINY, "--epochs", "1", "--amp", "off", "--out", tmp_path, "--name", "off").output
    assert validated == [None] and "validation amp" not in out


def test_batches_are_normalised_on_the_device_as_albumentations_normalises_each_image():
    import albumentations as A
    import numpy as np

    from artkit.data.transforms import create_transform
    from artkit.engine.device import DeviceBatches

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    pictures = np.random.default_rng(0).integers(0, 256, (4, 20, 24, 3), dtype=np.uint8)
    transform = create_transform("none", 16, "predict")
    samples = [transform(image=p)["image"] for p in pictures]
    assert all(s.dtype == torch.uint8 and s.shape == (16, 16, 3) for s in samples)  # the loader moves bytes
    loader = [(torch.stack(samples), torch.arange(4))]
    [(images, targets)] = list(DeviceBatches(loader, Runtime.create("cpu", "off"), mean, std))
    per_image = A.Compose([A.Resize(16, 16, area_for_downscale="image"), A.Normalize(mean=mean, std=std)])
    expected = torch.stack([torch.from_numpy(per_image(image=p)["image"]).permute(2, 0, 1) for p in pictures])
    assert images.dtype == torch.float32 and images.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(images, expected, atol=1e-5, rtol=0)
    assert targets.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("spec", ["cuda:1", "cuda"])
def test_a_named_gpu_becomes_the_current_one(monkeypatch, spec: str):
    """`--device cuda:1` (a k-fold fan-out child, `predict --device cuda:1`) ran on GPU 1 while pinned memory and
    the random state went to GPU 0, whose memory every such process took a share of."""
    current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    rt = Runtime.create(spec, "off")
    assert current == ([torch.device("cuda:1")] if spec == "cuda:1" else [])
    assert rt.device == torch.device(spec)
    Runtime.create("cuda", "off", local_rank=1)  # one of torchrun's processes: its LOCAL_RANK's GPU
    assert current[-1] == torch.device("cuda:1")


@pytest.mark.parametrize(
    ("visible", "ids", "children"),
    [(None, [0, 1], "0,1"), ("4,5,6", [0, 2], "4,6"), ("GPU-aa,GPU-bb", [1], "GPU-bb"), ("", [1], "1")],
)
def test_devices_count_the_gpus_this_process_sees(monkeypatch, visible, ids, children):
    """With CUDA_VISIBLE_DEVICES=4,5 (a cluster's job), --devices 0,1 ran on GPUs 0 and 1: someone else's."""
    from artkit.engine.launch import Devices, child_env

    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert child_env(Devices(kind="cuda", ids=ids))["CUDA_VISIBLE_DEVICES"] == children


@pytest.mark.parametrize(("rank", "count", "gpu"), [(1, 4, 1), (1, 1, 0), (3, 2, None)])
def test_each_rank_takes_its_gpu_or_the_only_one_it_sees(monkeypatch, rank: int, count: int, gpu: int | None):
    """Clusters that give each process a GPU of its own set LOCAL_RANK 1 where the process sees one GPU: set_device(1)
    failed with an invalid ordinal."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    if gpu is None:
        with pytest.raises(ArtkitError, match="LOCAL_RANK 3, but this process sees 2 GPU"):
            dev.gpu_for_rank(rank)
    else:
        assert dev.gpu_for_rank(rank) == gpu


def test_fanned_out_fold_processes_know_how_many_share_the_machine():
    from artkit.engine.launch import Devices, _single_env
    from artkit.system import PROCESSES_ENV

    assert _single_env(Devices(kind="cuda", ids=[0, 1, 2]), 0)[PROCESSES_ENV] == "3"
    assert _single_env(Devices(kind="cpu", ids=[0, 1]), 1)[PROCESSES_ENV] == "2"


def test_normalising_a_channel_last_batch_gives_the_broadcast_values_in_channels_last():
    """The fast path runs over the (B, H, W, C) memory; it must give exactly what broadcasting over the (B, C, H, W)
    view gives, for the pipelines' batches and for a plain NCHW one."""
    from artkit.engine.device import affine_pixels, as_nchw, pixel_affine

    scale, shift = pixel_affine((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), torch.device("cpu"))
    hwc = torch.randint(0, 256, (5, 13, 17, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for images in (as_nchw(hwc), as_nchw(hwc).contiguous()):
        out = affine_pixels(images, scale, shift)
        assert torch.equal(out, torch.addcmul(shift, images.float(), scale))
        assert out.shape == (5, 3, 13, 17) and out.dtype == torch.float32
    assert affine_pixels(as_nchw(hwc), scale, shift).is_contiguous(memory_format=torch.channels_last)
