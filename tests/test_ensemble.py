import numpy as np
import pandas as pd

from artkit.ensemble import Member, combine, fit_weights
from artkit.engine import softmax


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
    return Member(name, "kfold", classes, np.zeros((1, len(classes)), np.float32), frame)


def test_fit_weights_prefers_the_good_member_and_guards_against_noise():
    rng = np.random.default_rng(0)
    classes = ["a", "b", "c"]
    y = rng.integers(0, 3, 300)
    good = np.eye(3)[y] * 0.8 + 0.2 / 3
    noise = rng.dirichlet(np.ones(3), 300)
    labels = [classes[i] for i in y]
    w, report = fit_weights([_member("good", good, labels, classes), _member("noise", noise, labels, classes)],
                            classes, "logit")
    assert report["oof_macro_f1_fitted"] >= report["oof_macro_f1_equal"]
    assert w[0] >= w[1]
    # two equally useless members: fitted weights cannot win on held-out rows, so equal weights stay
    n1, n2 = rng.dirichlet(np.ones(3), 300), rng.dirichlet(np.ones(3), 300)
    w2, report2 = fit_weights([_member("n1", n1, labels, classes), _member("n2", n2, labels, classes)], classes, "logit")
    assert report2["used"] in ("equal", "fitted") and np.isclose(w2.sum(), 1.0)
