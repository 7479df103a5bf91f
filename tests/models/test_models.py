from pathlib import Path

import pytest
import torch

from artkit.errors import ArtkitError
from artkit.models.factory import create_model, model_data_config
from artkit.models.weights import load_weights


def test_unknown_model_suggests_names():
    with pytest.raises(ArtkitError) as err:
        create_model("efficientnet_b33", 3)
    assert "unknown model" in err.value.message and "efficientnet_b3" in err.value.hint


def test_offline_pretrained_fails_clearly_never_random():
    with pytest.raises(ArtkitError) as err:
        create_model("test_efficientnet", 3, pretrained=True)  # tests run with HF_HUB_OFFLINE=1
    assert "pretrained" in err.value.message and "--no-pretrained" in err.value.hint and "--weights" in err.value.hint


def test_model_without_pretrained_weights_is_refused():
    import timm

    no_weights = next(n for n in timm.list_models("resnet*") if not timm.list_pretrained(f"{n}.*"))
    with pytest.raises(ArtkitError, match="no pretrained weights"):
        create_model(no_weights, 3, pretrained=True)


def test_weights_file_reinitialises_a_classifier_of_another_size(tmp_path: Path):
    src = create_model("test_efficientnet", 1000)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    dst = create_model("test_efficientnet", 5)
    report = load_weights(dst, tmp_path / "w.pt")
    assert report.skipped == ["classifier.bias", "classifier.weight"]
    assert torch.equal(dst.state_dict()["conv_stem.weight"], src.state_dict()["conv_stem.weight"])


def test_weights_that_do_not_fit_are_refused(tmp_path: Path):
    torch.save(create_model("test_vit", 3).state_dict(), tmp_path / "vit.pt")
    with pytest.raises(ArtkitError, match="does not fit"):
        load_weights(create_model("test_efficientnet", 3), tmp_path / "vit.pt")


def test_data_config_comes_from_the_model():
    model = create_model("test_efficientnet", 3)
    pretrained = model.pretrained_cfg
    default = model_data_config(model)
    assert default.img_size == pretrained["input_size"][-1] != 48  # the model's own size when none is given
    assert default.mean == list(pretrained["mean"]) and default.std == list(pretrained["std"])
    assert model_data_config(model, img_size=48).img_size == 48  # an explicit size wins


def test_a_typo_suggests_the_nearest_names_first():
    from artkit.models.catalog import closest_names

    names = [
        "efficientnet_b0",
        "efficientnet_b4",
        "efficientnet_b5",
        "efficientnet_b6",
        "efficientnet_b7",
        "efficientnet_b8",
        "resnet50",
        "resnet101",
    ]
    assert closest_names("efficientnet_bo", names)[0] == "efficientnet_b0"  # o for 0 is nearer than b8
    assert closest_names("resnet5O", names) == ["resnet50"]
    assert closest_names("vit_base", names) == []
