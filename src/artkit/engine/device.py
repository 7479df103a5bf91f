"""Where and how tensors compute: device, mixed precision and memory format, travelling together as a
:class:`Runtime`."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass, replace

import torch

from artkit import system
from artkit.engine.config import AMP_MODES
from artkit.errors import ArtkitError


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ArtkitError(f"unknown device '{spec}'", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ArtkitError(f"--device {spec}: CUDA is not available here", "use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ArtkitError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def gpu_for_rank(local_rank: int) -> int:
    """The GPU (among those this process sees) of the process with ``local_rank``: its LOCAL_RANK'th, or the only
    one where a cluster gives each process a GPU of its own (CUDA_VISIBLE_DEVICES set per task)."""
    count = torch.cuda.device_count()
    if local_rank < count:
        return local_rank
    if count == 1:
        return 0
    raise ArtkitError(
        f"LOCAL_RANK {local_rank}, but this process sees {count} GPU(s)",
        "start one process per GPU (torchrun --nproc_per_node=<GPUs>), or give each process one GPU",
    )


# bf16 autocast against fp32, a bare training step and a bare forward, on CPUs whose instructions compute in bf16
# (2 threads, tf_efficientnet_lite0, 128 px, batch 32, channels_last; bench/bench_amp_cpu.py, results/amp_cpu.csv).
# Without such instructions bf16 is emulated: a whole predict ran 0.125x fp32 (bench/results/bf16_predict.csv).
CPU_BF16_SPEED = {
    "AMX": {"train": 0.70, "inference": 1.40},  # an Intel Xeon (Sapphire Rapids and later: matrix tiles)
    "AVX512-BF16": {"train": 0.88, "inference": 1.94},  # an AMD EPYC (Zen 4 and later; Intel Cooper Lake has them)
}


def cpu_bf16_units() -> str | None:
    """The CPU's native bf16 instructions, as a key of :data:`CPU_BF16_SPEED`, or None where bf16 would be
    emulated. AMX first: CPUs with its tiles have AVX512-BF16 too, and run bf16 at AMX's speeds."""
    checks = {"AMX": "_is_amx_tile_supported", "AVX512-BF16": "_is_avx512_bf16_supported"}
    for units, name in checks.items():
        check = getattr(torch.cpu, name, None)
        try:
            if check is not None and check():
                return units
        except RuntimeError:
            continue
    return None


def gpu_has_bf16() -> bool:
    """Whether the current GPU computes bf16 itself (Ampere and later). torch's check counts by default GPUs that
    only emulate it, slowly: a T4 or V100 got bf16 instead of fp16."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch before 2.4: only GPUs that have it were counted
        return torch.cuda.is_bf16_supported()


def tf32_matrix_products() -> None:
    """fp32 matrix products on a GPU's tensor cores (TF32), as its convolutions already are by default and as
    timm's train.py sets: what --amp off leaves in fp32 runs several times faster on Ampere and later. Through
    torch's float32 matmul precision, which keeps its old and new TF32 flags agreeing: setting torch 2.9's new
    flag alone makes the old getters raise, and torch.compile's inductor reads them (pytorch#166387)."""
    torch.set_float32_matmul_precision("high")


def choose_amp(spec: str, device: torch.device, phase: str = "train") -> tuple[torch.dtype | None, str]:
    """The autocast dtype (None: full fp32) for ``phase`` ('train' or 'inference'), and why 'auto' chose it
    ('' when the user chose). 'auto' is bf16 on GPUs that have it, else fp16; on CPU, whatever ran faster for the
    phase on CPUs with the same bf16 instructions (:data:`CPU_BF16_SPEED`), and fp32 on CPUs without them."""
    if spec not in AMP_MODES:
        raise ArtkitError(f"unknown --amp '{spec}'", f"choose one of: {', '.join(AMP_MODES)}")
    if spec == "auto" and device.type == "cuda":
        if gpu_has_bf16():
            return torch.bfloat16, "auto: this GPU has bf16, which needs no loss scaling"
        return torch.float16, "auto: this GPU has no bf16; fp16 with loss scaling"
    if spec == "auto":
        return _cpu_auto(phase)
    if spec == "off":
        return None, ""
    if spec == "bf16" and device.type == "cuda" and not gpu_has_bf16():
        raise ArtkitError("--amp bf16: this GPU has no bfloat16 support", "use --amp fp16")
    return (torch.bfloat16 if spec == "bf16" else torch.float16), ""


def _cpu_auto(phase: str) -> tuple[torch.dtype | None, str]:
    units = cpu_bf16_units()
    if units is None:
        return None, "auto: this CPU has no bf16 instructions (AMX or AVX512-BF16)"
    speed = CPU_BF16_SPEED[units][phase]
    if speed > 1:
        return torch.bfloat16, f"auto: {units}; bf16 {phase} ran {speed:.2f}x fp32 on such a CPU"
    return None, f"auto: bf16 {phase} ran {speed:.2f}x fp32 even with {units}"


def use_channels_last(device: torch.device) -> bool:
    """NHWC memory format: faster convolutions on CUDA, and on CPU for EfficientNets (1.2-1.4x per train step)
    while neutral for ResNets and ConvNeXt (bench/bench_channels_last.py, docs/benchmarks.md)."""
    return device.type in ("cuda", "cpu")


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """Device, autocast dtype (None: fp32) and memory format of a run."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    amp_reason: str = ""  # why --amp auto chose amp_dtype
    compile: bool = False  # torch.compile the modules that run the batches (--compile)

    @classmethod
    def create(
        cls,
        device: str = "auto",
        amp: str = "auto",
        local_rank: int | None = None,
        phase: str = "train",
        compile: bool = False,
    ) -> Runtime:
        """``local_rank``: this process's GPU among several (one process per GPU, as torchrun starts them).
        ``phase``: 'train' or 'inference', which --amp auto may run at different precisions."""
        system.keep_freed_memory()  # every command that runs a model comes here first
        dev = resolve_device(device)
        if local_rank is not None and dev.type == "cuda" and device in ("auto", "cuda"):
            dev = resolve_device(f"cuda:{gpu_for_rank(local_rank)}")
        if dev.type == "cuda" and dev.index is not None:  # pinned-memory threads and the RNG follow, not cuda:0
            torch.cuda.set_device(dev)
        if dev.type == "cuda":  # batches keep their shape: cuDNN times its algorithms once a shape, keeps the fastest
            torch.backends.cudnn.benchmark = True
            tf32_matrix_products()
        dtype, reason = choose_amp(amp, dev, phase)
        return cls(
            device=dev, amp_dtype=dtype, channels_last=use_channels_last(dev), amp_reason=reason, compile=compile
        )

    def for_phase(self, amp: str, phase: str) -> Runtime:
        """This runtime with ``amp`` resolved for ``phase`` ('train' or 'inference'): a training run validates at
        inference's precision, which --amp auto may choose otherwise (bf16 on a CPU whose bf16 units speed up a
        forward but slow down a training step)."""
        dtype, reason = choose_amp(amp, self.device, phase)
        return replace(self, amp_dtype=dtype, amp_reason=reason)

    @property
    def amp_name(self) -> str:
        name = str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off"
        return f"{name} ({self.amp_reason})" if self.amp_reason else name

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """A batch moved to the device in the run's memory format."""
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def model_input(self, images: torch.Tensor, affine: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """uint8 images (B, C, H, W) as the model takes them: on the device, in the run's memory format, float and
        normalised with ``affine`` (:func:`pixel_affine`) in one pass that also makes the float copy. The uint8
        copy is a quarter of a float one."""
        return affine_pixels(self.images(images), *affine)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def compiled(self, module: torch.nn.Module, one_batch_size: bool = True) -> torch.nn.Module:
        """``module`` under torch.compile with --compile (it compiles at its first call; the weights stay the
        module's own, so checkpoints are unchanged), else itself. With ``one_batch_size``, batches of another size
        than the first run eagerly (see :class:`FirstBatchSize`); without, for batches whose sizes vary throughout
        (one rank's of several), they compile again, once."""
        if not self.compile:
            return module
        import logging

        # inductor's first import warns that a CPU machine has no CUDA runtime: true, and not the user's concern
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        fast = torch.compile(module)
        return FirstBatchSize(module, fast) if one_batch_size else fast

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 on CUDA needs loss scaling; bf16 and fp32 do not."""
        if self.amp_dtype == torch.float16 and self.device.type == "cuda":
            return torch.amp.GradScaler("cuda")
        return None

    @property
    def pin_memory(self) -> bool:
        return self.device.type == "cuda"


def pixel_affine(mean, std, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and shift (each (1, C, 1, 1) on ``device``) that normalise 0-255 pixels with ``mean`` and ``std`` of
    0-1 pixels: ``(x / 255 - mean) / std``, as albumentations' Normalize does."""
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    return (1.0 / (255.0 * std_t)).to(device), (-mean_t / std_t).to(device)


def affine_pixels(images: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``shift + images * scale`` with (1, C, 1, 1) ``scale`` and ``shift``: float, in one pass. A batch of the
    pipelines' (H, W, C) images seen as (B, C, H, W) is run over in its own memory order, channel last: the same
    values as broadcasting over the view, at 1.45x the speed (32 images at 224 px: 3.3 against 4.7 ms on 2 cores,
    of a predict batch's 210 ms)."""
    channel_last = images.permute(0, 2, 3, 1)
    if channel_last.is_contiguous():
        return torch.addcmul(shift.view(-1), channel_last, scale.view(-1)).permute(0, 3, 1, 2)
    return torch.addcmul(shift, images, scale)


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 images (B, C, H, W) as float, normalised with ``mean`` and ``std`` of 0-1 pixels, where they are."""
    return affine_pixels(images, *pixel_affine(mean, std, images.device))


class DeviceBatches:
    """A loader's uint8 (images, targets) batches on the run's device, in its memory format, normalised there
    with ``mean`` and ``std`` (timm's prefetcher idea): the loader processes move a quarter of the bytes and make
    no float copy of each image. Iterates like the loader, in the same order."""

    def __init__(self, loader, rt: Runtime, mean, std) -> None:
        self.loader, self.rt = loader, rt
        self.mean, self.std = tuple(mean), tuple(std)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        affine = pixel_affine(self.mean, self.std, self.rt.device)
        for images, targets in self.loader:
            yield self.rt.model_input(as_nchw(images), affine), targets.to(self.rt.device, non_blocking=True)


def as_nchw(images: torch.Tensor) -> torch.Tensor:
    """A batch of the pipelines' (H, W, C) images, (B, H, W, C), as the (B, C, H, W) the models take: a view, with
    no copy, whose memory is already in the channels_last format."""
    return images.permute(0, 3, 1, 2)


class FirstBatchSize(torch.nn.Module):
    """Runs batches the size of the first through ``compiled`` and the others (an epoch's or a dataset's last,
    smaller batch) through ``eager``, the same module: torch.compile would compile again for a second size, to a
    dynamic-shape graph, taking as long as the first compile (measured: one more graph for the last batch)."""

    def __init__(self, eager: torch.nn.Module, compiled: torch.nn.Module) -> None:
        super().__init__()
        self.eager, self.compiled = eager, compiled
        self.size: int | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.size = images.shape[0] if self.size is None else self.size
        return (self.compiled if images.shape[0] == self.size else self.eager)(images)


def compile_failure(exc: BaseException) -> ArtkitError | None:
    """The message for an error of torch.compile (None for any other error): a missing C++ compiler or Triton,
    or a model it cannot trace."""
    dynamo = sys.modules.get("torch._dynamo.exc")
    if dynamo is None or not isinstance(exc, dynamo.TorchDynamoException):
        return None
    reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return ArtkitError(
        f"torch.compile failed: {reason[:300]}", "leave out --compile (on CPU it needs a C++ compiler, on a GPU Triton)"
    )


def oom_error(batch_size: int, resume_hint: str = "resume finished epochs with --resume") -> ArtkitError:
    half = max(1, batch_size // 2)
    return ArtkitError(
        f"CUDA ran out of memory at --batch-size {batch_size}",
        f"try --batch-size {half} --grad-accum {max(2, batch_size // half)} (same effective batch), "
        f"--amp bf16/fp16, or a smaller --img-size; {resume_hint}",
    )
