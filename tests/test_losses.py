"""Training losses against values worked out by hand."""
import math

import pytest
import torch

from siamtrack.config import TrainConfig
from siamtrack.models.head import XCorr
from siamtrack.training.losses import (PairLoss, balance_weights, contrastive_loss, embedding_distances, label_maps,
                                       logistic_loss, triplet_loss)

ONE_POSITIVE = torch.tensor([[1.0, 0.0, 0.0, 0.0]])


def test_label_map_marks_cells_within_radius_of_the_target():
    # 5x5 cells 8 px apart, radius 8 px: the target cell and its four neighbours; diagonals are 11.3 px off
    centred = label_maps(5, torch.tensor([[0.0, 0.0]]), stride=8, radius=8)[0]
    assert centred.sum() == 5 and centred[2, 2] == 1 and centred[1, 2] == 1 and centred[1, 1] == 0
    # the target 8 px right of the crop centre: cell x=3 of row 2 and its neighbours
    shifted = label_maps(5, torch.tensor([[8.0, 0.0]]), stride=8, radius=8)[0]
    assert shifted.nonzero().tolist() == [[1, 3], [2, 2], [2, 3], [2, 4], [3, 3]]


def test_positives_and_negatives_weigh_half_each():
    assert balance_weights(ONE_POSITIVE)[0].tolist() == pytest.approx([0.5, 1 / 6, 1 / 6, 1 / 6])


def test_logistic_loss_by_hand():
    # positive score 2: log(1 + e^-2) = 0.126928; negatives -1, 0, 1: log(1 + e^s) = 0.313262, 0.693147, 1.313262
    # 0.5 * 0.126928 + (0.313262 + 0.693147 + 1.313262) / 6 = 0.450076
    loss = logistic_loss(torch.tensor([[2.0, -1.0, 0.0, 1.0]]), ONE_POSITIVE)
    assert loss.item() == pytest.approx(0.450076, abs=1e-6)


def test_contrastive_loss_by_hand():
    # positive d=0.5: 0.25; negatives (margin 1) d=0.2: 0.64, d=1.5: 0, d=0.9: 0.01 -> mean 0.216667
    # 0.5 * 0.25 + 0.5 * 0.216667 = 0.233333
    loss = contrastive_loss(torch.tensor([[0.5, 0.2, 1.5, 0.9]]), ONE_POSITIVE, margin=1.0)
    assert loss.item() == pytest.approx(0.233333, abs=1e-6)


def test_triplet_loss_by_hand():
    # one positive d=0.5 against negatives 0.2, 1.5, 0.9 (margin 1): 1.3, 0, 0.6 -> 0.633333
    # two positives 0.5, 0.3 against negatives 2.0, 1.0: 0, 0.5, 0, 0.3 -> 0.2; batch mean 0.416667
    distances = torch.tensor([[0.5, 0.2, 1.5, 0.9], [0.5, 0.3, 2.0, 1.0]])
    labels = torch.tensor([[1.0, 0, 0, 0], [1.0, 1, 0, 0]])
    assert triplet_loss(distances, labels, margin=1.0).item() == pytest.approx(0.416667, abs=1e-6)


def test_embedding_distances_between_normalised_vectors():
    fz = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    # windows (1, 0), (0, 3), (-2, 0), (1, 1) -> after normalising: distances 0, sqrt 2, 2, sqrt(2 - sqrt 2)
    fx = torch.tensor([[1.0, 0.0], [-2.0, 1.0], [0.0, 3.0], [0.0, 1.0]]).view(1, 2, 2, 2)
    expected = [[0, math.sqrt(2)], [2, math.sqrt(2 - math.sqrt(2))]]
    assert embedding_distances(fz, fx)[0].tolist() == [pytest.approx(row, abs=1e-5) for row in expected]


@pytest.mark.parametrize("kind", ["logistic", "contrastive", "triplet"])
def test_pair_loss_each_kind_gives_finite_gradients(kind):
    torch.manual_seed(0)
    fz = torch.randn(2, 4, 3, 3, requires_grad=True)
    fx = torch.randn(2, 4, 7, 7, requires_grad=True)
    loss = PairLoss(TrainConfig(loss=kind), stride=8, head=XCorr())(fz, fx, torch.zeros(2, 2))
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(fz.grad).all() and fx.grad.abs().sum() > 0


def test_pair_loss_logistic_uses_the_head_response():
    torch.manual_seed(0)
    fz, fx, offsets = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 7, 7), torch.tensor([[8.0, 0.0], [0.0, -8.0]])
    head = XCorr(out_scale=0.1)
    expected = logistic_loss(head(fz, fx)[:, 0], label_maps(5, offsets, 8, 16))
    got = PairLoss(TrainConfig(loss="logistic", positive_radius=16), stride=8, head=head)(fz, fx, offsets)
    assert got.item() == pytest.approx(expected.item())
