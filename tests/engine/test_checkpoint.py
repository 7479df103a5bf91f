from pathlib import Path

import pytest
import torch

from artkit.engine.checkpoint import ModelMeta, load_checkpoint, make_checkpoint, model_from_checkpoint
from artkit.errors import ArtkitError
from artkit.models.factory import create_model
from artkit.writer import save_torch

META = ModelMeta(
    model_name="test_efficientnet",
    classes=["Albrecht Dürer", "b", "c"],
    img_size=32,
    mean=[0.5] * 3,
    std=[0.25] * 3,
    config={"aug": "light", "epochs": 2, "clip_grad": None},
)


def _ckpt(model):
    return make_checkpoint(META, model.state_dict(), {"val_macro_f1": 0.5}, 2)


def test_round_trip_with_weights_only(tmp_path: Path):
    model = create_model("test_efficientnet", 3)
    save_torch(_ckpt(model), tmp_path / "best.pt")
    raw = torch.load(tmp_path / "best.pt", weights_only=True)  # plain tensors and values only
    assert raw["classes"][0] == "Albrecht Dürer" and raw["img_size"] == 32
    ckpt = load_checkpoint(tmp_path / "best.pt")
    rebuilt = model_from_checkpoint(ckpt)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert torch.allclose(model(x), rebuilt(x))
    assert not list(tmp_path.glob("*.tmp"))


class OnTheGpu(torch.Tensor):
    """A tensor that says it is on a GPU until ``.cpu()`` (what a CUDA run's optimiser state holds)."""

    @property
    def device(self):
        return torch.device("cuda", 0)

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor)


def test_the_resume_state_of_a_gpu_run_is_saved_on_the_cpu():
    """last.pt held the optimiser's moments (and EMA's model) on the GPU: a CPU-only machine could not load it."""
    model = create_model("test_efficientnet", 3)
    moment = torch.zeros(3).as_subclass(OnTheGpu)
    state = {"optimizer": {"state": {0: {"exp_avg": moment, "step": moment}}, "param_groups": [{"lr": 0.1}]},
             "rng": [moment, (moment,)], "epoch": 2}  # fmt: skip
    saved = make_checkpoint(META, model.state_dict(), {}, 2, state)["train_state"]
    tensors = [*saved["optimizer"]["state"][0].values(), saved["rng"][0], saved["rng"][1][0]]
    assert all(type(t) is torch.Tensor and t.device.type == "cpu" for t in tensors)
    assert (
        saved["optimizer"]["param_groups"] == [{"lr": 0.1}] and saved["epoch"] == 2 and type(saved["rng"][1]) is tuple
    )


class Evil:
    pass


def test_pickled_objects_are_refused(tmp_path: Path):
    torch.save({"format": "artkit-checkpoint", "obj": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ArtkitError, match="pickled"):
        load_checkpoint(tmp_path / "evil.pt")


def test_non_artkit_and_missing_files(tmp_path: Path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(ArtkitError, match="not an artkit checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(ArtkitError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(ArtkitError):
        load_checkpoint(tmp_path / "junk.pt")
