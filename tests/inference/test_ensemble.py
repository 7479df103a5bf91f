import numpy as np
import pandas as pd
import pytest

from artkit.inference.ensemble import Member, combine, fit_weights
from artkit.metrics import softmax


def test_combine_modes():
    a = np.array([[2.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    b = np.array([[0.0, 1.0], [0.0, 3.0]], dtype=np.float32)
    assert np.allclose(combine([a, b], np.array([1, 1]), "logit"), (a + b) / 2)
    assert np.allclose(combine([a, a], np.array([3, 1]), "logit"), a)
    prob = np.exp(combine([a, b], np.array([1, 1]), "prob"))
    assert np.allclose(prob, (softmax(a) + softmax(b)) / 2, atol=1e-6)
    geo = combine([a, b], np.array([1, 0]), "geometric")
    assert np.allclose(softmax(geo), softmax(a), atol=1e-6)


def _member(name, probs, labels, classes):
    frame = pd.DataFrame(probs, columns=classes)
    frame.insert(0, "label", labels)
    frame.insert(0, "id", [str(i) for i in range(len(labels))])
    return Member(path=name, kind="kfold", classes=classes, logits=np.zeros((1, len(classes)), np.float32), oof=frame)


def test_fit_weights_prefers_the_good_member_and_guards_against_noise():
    rng = np.random.default_rng(0)
    classes = ["a", "b", "c"]
    y = rng.integers(0, 3, 300)
    good = np.eye(3)[y] * 0.8 + 0.2 / 3
    noise = rng.dirichlet(np.ones(3), 300)
    labels = [classes[i] for i in y]
    w, report = fit_weights(
        [_member("good", good, labels, classes), _member("noise", noise, labels, classes)], classes, "logit"
    )
    assert report["used"] == "fitted" and np.allclose(w, report["fitted_weights"], atol=1e-3)
    assert w[0] > w[1]  # the noise member is weighted down
    assert report["heldout_macro_f1_fitted"] > report["heldout_macro_f1_equal"]


def test_fit_weights_keeps_equal_weights_when_fitting_only_memorises_the_oof_rows():
    rng = np.random.default_rng(0)
    classes = ["a", "b", "c"]
    y = rng.integers(0, 3, 300)
    labels = [classes[i] for i in y]
    # two useless members: some weights score higher on all OOF rows by chance, but not on held-out halves
    n1, n2 = rng.dirichlet(np.ones(3), 300), rng.dirichlet(np.ones(3), 300)
    w, report = fit_weights([_member("n1", n1, labels, classes), _member("n2", n2, labels, classes)], classes, "logit")
    assert report["oof_macro_f1_fitted"] > report["oof_macro_f1_equal"]
    assert report["heldout_macro_f1_fitted"] <= report["heldout_macro_f1_equal"]
    assert report["used"] == "equal" and np.allclose(w, [0.5, 0.5])
    # identical members: no weighting can win anywhere, so equal weights stay
    w, report = fit_weights([_member("n1", n1, labels, classes), _member("n1b", n1, labels, classes)], classes, "prob")
    assert report["used"] == "equal" and np.allclose(w, [0.5, 0.5])


def test_oof_score_of_an_ensemble_uses_the_weights():
    from artkit.inference.ensemble import oof_arrays, oof_macro_f1

    classes = ["a", "b"]
    labels = ["a", "b", "a", "b"]
    right = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    wrong = right[:, ::-1].copy()  # wrong on every row
    members = [_member("right", right, labels, classes), _member("wrong", wrong, labels, classes)]
    members[1].oof = members[1].oof.iloc[::-1]  # rows are matched by id, not position
    y, probs = oof_arrays(members, classes)
    assert oof_macro_f1(y, probs, np.array([1.0, 0.0]), "logit") == 1.0
    assert oof_macro_f1(y, probs, np.array([0.0, 1.0]), "logit") == 0.0


@pytest.mark.slow
def test_checkpoints_that_preprocess_alike_share_one_pass(tmp_path, monkeypatch):
    """Each test image is decoded once per input size, not once per checkpoint, and the logits are each
    checkpoint's own."""
    import artkit.data.dataset as dataset
    from artkit.engine.checkpoint import load_checkpoint
    from artkit.inference.config import PredictConfig
    from artkit.inference.runner import run_checkpoint, run_checkpoints

    from helpers import make_dacon, random_checkpoint

    data = make_dacon(tmp_path / "data")
    paths = sorted(str(p) for p in (data / "test").iterdir())
    same = [str(random_checkpoint(tmp_path / f"m{i}.pt", img_size=32)) for i in range(3)]
    other = str(random_checkpoint(tmp_path / "big.pt", img_size=48))
    decoded = []
    real = dataset.load_image
    monkeypatch.setattr(dataset, "load_image", lambda path, size: decoded.append(path) or real(path, size))
    opts = PredictConfig(checkpoint="x", batch_size=4, workers=0, tta="none", cache="off")  # count real decodes
    out = run_checkpoints([*same, other], paths, opts)
    assert len(decoded) == 2 * len(paths)  # one pass at 32 px for three checkpoints, one at 48 px
    for source in (*same, other):
        classes, logits = out[source]
        alone = run_checkpoint(load_checkpoint(source), paths, opts, source=source)
        assert classes == ["a", "b", "c"] and np.allclose(logits, alone, atol=1e-5)
