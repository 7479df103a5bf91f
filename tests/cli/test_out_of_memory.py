"""CUDA out of memory, wherever it strikes, ends in one message with the fix (a smaller batch at the same
effective batch), never a traceback. The GPU's error is raised on the CPU here, where the commands meet it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import TINY, artkit


def _out_of_memory(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


class _FitsTwo(torch.nn.Module):
    """A model on a GPU that has memory for two images at a time (here: five validation images a batch)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        if len(x) > 2:
            _out_of_memory()
        return self.model(x)


@pytest.mark.parametrize("where", ["train_one_epoch", "validate"])
def test_out_of_memory_in_training_or_validation_names_the_fix(
    dacon: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
):
    import artkit.engine.trainer as trainer

    monkeypatch.setattr(trainer, where, _out_of_memory)
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path, ok=False)
    assert r.exit_code == 2, r.output
    assert "CUDA ran out of memory at --batch-size 8" in r.output and "--batch-size 4 --grad-accum 2" in r.output
    assert "Traceback" not in r.output


def test_validation_that_runs_out_of_memory_goes_on_in_parts_with_the_same_metrics(
    dacon: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Validation runs a fused copy of the model on twice the training batch: where that ran out of GPU memory, the
    run ended after the epoch had trained, before its last.pt. Now the batch runs in parts and the run goes on."""
    import pandas as pd

    import artkit.engine.validation as validation

    artkit("train", "--data", dacon, *TINY, "--epochs", "2", "--out", tmp_path, "--name", "whole")
    fuse = validation.fuse_conv_bn

    monkeypatch.setattr(validation, "fuse_conv_bn", lambda model, probe: (_FitsTwo(fuse(model, probe)[0]), []))
    r = artkit("train", "--data", dacon, *TINY, "--epochs", "2", "--out", tmp_path, "--name", "parts")
    said = " ".join(r.output.split())  # the console wraps long lines
    assert "CUDA ran out of memory in validation at 5 images a batch: it goes on 2 at a time" in said
    assert said.count("CUDA ran out of memory") == 2  # once a pass (each epoch's validation), not once a batch
    columns = ["val_loss", "val_acc", "val_macro_f1"]
    whole, parts = (pd.read_csv(tmp_path / name / "results.csv")[columns] for name in ("whole", "parts"))
    pd.testing.assert_frame_equal(parts, whole, atol=1e-5)
    assert (tmp_path / "parts" / "last.pt").exists()


def test_predict_that_runs_out_of_memory_goes_on_in_parts_with_the_same_submission(
    dacon: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import artkit.inference.runner as runner

    artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path)
    best = tmp_path / "train" / "best.pt"
    artkit("predict", best, "--data", dacon, "-o", tmp_path / "whole.csv", "--tta", "hflip")
    made = runner.inference_model
    monkeypatch.setattr(runner, "inference_model", lambda *a: _FitsTwo(made(*a)))
    r = artkit("predict", best, "--data", dacon, "-o", tmp_path / "parts.csv", "--tta", "hflip")
    assert "CUDA ran out of memory in inference at" in " ".join(r.output.split())
    assert (tmp_path / "parts.csv").read_text() == (tmp_path / "whole.csv").read_text()


def test_out_of_memory_in_predict_names_the_fix(dacon: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import artkit.engine.steps as steps

    artkit("train", "--data", dacon, *TINY, "--epochs", "1", "--out", tmp_path)
    monkeypatch.setattr(steps, "predict_logits_of", _out_of_memory)
    r = artkit("predict", tmp_path / "train" / "best.pt", "--data", dacon, "-o", tmp_path / "s.csv", ok=False)
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "CUDA ran out of memory running test_efficientnet on one image" in said
    assert "nvidia-smi" in said and "Traceback" not in said
    assert not (tmp_path / "s.csv").exists()


def test_out_of_memory_on_the_first_blank_image_is_not_called_a_size_problem():
    from artkit.engine.device import Runtime
    from artkit.engine.session import check_input_size
    from artkit.errors import ArtkitError

    class Huge(torch.nn.Module):
        def forward(self, x):
            _out_of_memory()

    with pytest.raises(ArtkitError, match="ran out of memory running huge on one 64 px image") as caught:
        check_input_size(Huge(), "huge", 64, Runtime.create("cpu", "off"))
    assert "nvidia-smi" in caught.value.hint and "cannot take" not in caught.value.message


@pytest.mark.parametrize(
    ("failure", "size_problem"),
    [
        ("CUDA error: an illegal memory access was encountered", False),
        ("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED", False),
        ("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!", False),
        ("Input height (32) doesn't match model (224).", True),
    ],
)
def test_a_gpu_failure_on_the_first_blank_image_is_not_called_a_size_problem(failure: str, size_problem: bool):
    """A device or library failure, read as "cannot take 32 x 32 px images", sent users to the wrong fix."""
    from artkit.engine.device import Runtime
    from artkit.engine.session import check_input_size
    from artkit.errors import ArtkitError

    class Failing(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError(failure)

    with pytest.raises(ArtkitError if size_problem else RuntimeError) as caught:
        check_input_size(Failing(), "net", 32, Runtime.create("cpu", "off"))
    assert ("cannot take 32 x 32 px images" in str(caught.value)) == size_problem
