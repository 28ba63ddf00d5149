"""The recipe screen's validation sets: actor-disjoint, inside fold 1's training actors, covering all of them."""

import numpy as np

from bench.ablation import validation_splits
from train.data import EMOBOX_FOLDS


def test_validation_sets_are_disjoint_and_cover_the_training_actors_only():
    actors = np.repeat(np.arange(1, 25), 60)  # RAVDESS: 24 actors, 60 clips each
    splits = validation_splits(actors)
    sets = [set(actors[validation].tolist()) for _, validation in splits]
    assert [len(s) for s in sets] == [4] * 5
    assert set().union(*sets) == set(range(1, 25)) - set(EMOBOX_FOLDS[1])  # all 20, no test actor
    assert sum(len(s) for s in sets) == 20  # hence disjoint
    assert sets[0] == {7, 8, 14, 23}  # the set the table's earlier rows were screened on
    for (train, validation), held_out in zip(splits, sets):
        assert not set(actors[train].tolist()) & held_out
        assert set(actors[train].tolist()) | held_out == set(range(1, 25)) - set(EMOBOX_FOLDS[1])
        assert len(train) + len(validation) == 20 * 60
