import math

import pytest
import torch
import torch.nn.functional as F

from artkit.errors import ArtkitError
from artkit.models.losses import class_weights, create_loss, focal_loss

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
TARGET = torch.tensor([0, 2, 1])


def test_ce_equals_torch_cross_entropy():
    assert torch.allclose(create_loss("ce")(LOGITS, TARGET), F.cross_entropy(LOGITS, TARGET))


def test_ce_label_smoothing_equals_torch():
    ours = create_loss("ce", label_smoothing=0.1)(LOGITS, TARGET)
    assert torch.allclose(ours, F.cross_entropy(LOGITS, TARGET, label_smoothing=0.1))


def test_class_weighted_ce_equals_torch_weighted():
    counts = [10, 5, 1]
    w = class_weights(counts, "inverse")
    ours = create_loss("ce", counts, "inverse")(LOGITS, TARGET)
    assert torch.allclose(ours, F.cross_entropy(LOGITS, TARGET, weight=w))


def test_focal_gamma_zero_is_cross_entropy():
    assert torch.allclose(create_loss("focal", focal_gamma=0.0)(LOGITS, TARGET), F.cross_entropy(LOGITS, TARGET))
    w = class_weights([3, 2, 1], "sqrt")
    focal = focal_loss(LOGITS, TARGET, weight=w, gamma=0.0)
    assert torch.allclose(focal, F.cross_entropy(LOGITS, TARGET, weight=w))


def test_focal_matches_hand_computed_values():
    # one sample, p = softmax([2, 0, 0])[0]
    logits, target = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])
    p = math.exp(2) / (math.exp(2) + 2)
    expected = -((1 - p) ** 2) * math.log(p)
    assert math.isclose(focal_loss(logits, target, gamma=2.0).item(), expected, rel_tol=1e-6)
    # two samples with alpha: weighted mean of -alpha (1-p)^g log p over sum of alpha
    logits2 = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    target2 = torch.tensor([0, 1])
    alpha = torch.tensor([0.25, 0.5, 0.25])
    p2 = math.exp(1) / (math.exp(1) + 2)
    l1, l2 = -((1 - p) ** 1.5) * math.log(p), -((1 - p2) ** 1.5) * math.log(p2)
    expected2 = (0.25 * l1 + 0.5 * l2) / 0.75
    assert math.isclose(focal_loss(logits2, target2, weight=alpha, gamma=1.5).item(), expected2, rel_tol=1e-6)


def test_focal_down_weights_easy_examples():
    easy = torch.tensor([[6.0, 0.0, 0.0]])
    assert focal_loss(easy, torch.tensor([0]), gamma=2.0) < 0.01 * F.cross_entropy(easy, torch.tensor([0]))


def test_soft_targets_are_accepted():
    soft = F.one_hot(TARGET, 3).float()
    assert torch.allclose(create_loss("focal")(LOGITS, soft), create_loss("focal")(LOGITS, TARGET))


@pytest.mark.parametrize("mode", ["inverse", "sqrt", "effective"])
def test_class_weights_favour_rare_classes_and_keep_scale(mode):
    counts = [100, 10, 1]
    w = class_weights(counts, mode)
    assert w[0] < w[1] < w[2]
    assert math.isclose(float((w * torch.tensor(counts, dtype=torch.float32)).sum()), sum(counts), rel_tol=1e-5)


def test_unknown_loss_and_weights_are_clear_errors():
    with pytest.raises(ArtkitError, match="unknown loss 'dice'"):
        create_loss("dice")
    with pytest.raises(ArtkitError, match="class-weights"):
        create_loss("ce", [1, 2], "bogus")
