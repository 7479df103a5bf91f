import numpy as np
import pandas as pd
import pytest

from artkit.data.sampler import EpochSampler, sample_weights
from artkit.data.splits import fold_assignments, holdout_mask, make_split
from artkit.errors import ArtkitError

LABELS = ["a"] * 50 + ["b"] * 20 + ["c"] * 5 + ["d"] * 1


def test_holdout_is_stratified_and_deterministic():
    m1, m2 = holdout_mask(LABELS, 0.2, seed=3), holdout_mask(LABELS, 0.2, seed=3)
    assert (m1 == m2).all()
    lab = np.array(LABELS)
    assert m1[lab == "a"].sum() == 10 and m1[lab == "b"].sum() == 4 and m1[lab == "c"].sum() == 1
    assert m1[lab == "d"].sum() == 0  # a class of one stays in training
    assert not (holdout_mask(LABELS, 0.2, seed=4) == m1).all()


def test_kfold_puts_every_row_in_exactly_one_validation_fold():
    folds = fold_assignments(LABELS, 5, seed=0)
    assert set(folds) == {0, 1, 2, 3, 4}
    lab = np.array(LABELS)
    for f in range(5):
        assert (lab[folds == f] == "a").sum() == 10  # stratified
    table = pd.DataFrame({"id": map(str, range(len(LABELS))), "path": "", "label": LABELS})
    val_ids = [set(make_split(table, 0, folds=5, fold=f).query("split == 'val'")["id"]) for f in range(5)]
    assert sum(len(v) for v in val_ids) == len(LABELS) and len(set().union(*val_ids)) == len(LABELS)


def test_bad_fold_arguments():
    table = pd.DataFrame({"id": ["1", "2"], "path": "", "label": ["a", "b"]})
    with pytest.raises(ArtkitError):
        make_split(table, 0, folds=3, fold=3)
    with pytest.raises(ArtkitError):
        holdout_mask(["a", "b"], 1.5, 0)


def test_balanced_sampler_evens_out_classes():
    y = np.array([0] * 900 + [1] * 100)
    sampler = EpochSampler(len(y), seed=0, weights=sample_weights(y, "balanced"))
    drawn = y[[i for i, _ in sampler]]
    assert 0.4 < drawn.mean() < 0.6
    sqrt = EpochSampler(len(y), seed=0, weights=sample_weights(y, "sqrt"))
    assert 0.15 < y[[i for i, _ in sqrt]].mean() < 0.35  # sqrt: 1/sqrt(9) = a third of the weight ratio


def test_sampler_order_depends_only_on_seed_and_epoch():
    a, b = EpochSampler(20, seed=1), EpochSampler(20, seed=1)
    a.set_epoch(3), b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    assert sorted(i for i, _ in a) == list(range(20))
