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


def test_full_training_path_row_trains_without_its_validation_actors_and_scores_them_clean_and_in_babble(tmp_path):
    import json

    from conftest import FIXTURE

    from bench.ablation import run_trainer_variant
    from train import data

    dataset = data.load_ravdess(str(FIXTURE))
    actors = np.asarray(dataset["actor"])
    train_rows, val_rows = np.flatnonzero(actors <= 2), np.flatnonzero(actors >= 3)
    result = run_trainer_variant("tiny", {"epochs": 1, "batch_size": 8, "workers": 0, "pitch": False,
                                          "stretch": False}, dataset, train_rows, val_rows, tmp_path / "set0")
    split = json.loads((tmp_path / "set0" / "metrics.json").read_text())["actors"]
    assert split == {"train": [1, 2], "validation": [3, 4]}
    assert 0.0 <= result["validation_ua"] <= 1.0 and 0.0 <= result["train_accuracy"] <= 1.0
    assert abs(result["validation_ua"] - result["clean_ua_recognizer"]) <= 0.25  # same clips, two scoring paths
    assert 0.0 <= result["babble_10db_ua"] <= 1.0
    assert result["babble_10db_drop_points"] == 100 * (result["clean_ua_recognizer"] - result["babble_10db_ua"])
    assert len(result["curve"]) == 1 and (tmp_path / "set0" / "model" / "model.safetensors").is_file()


def test_table_shows_each_set_of_a_partial_run_and_the_mean_only_of_a_complete_one():
    from bench.ablation import table

    partial = {k: {"validation_ua": ua, "train_accuracy": 0.7, "seconds": 600} for k, ua in [(0, 0.6), (2, 0.5)]}
    complete = {k: {"validation_ua": 0.5 + k / 10, "train_accuracy": 0.7, "seconds": 600} for k in range(5)}
    rows = table({"partial": partial, "complete": complete}).splitlines()
    assert "| 2 of 5 sets run (60.0% / - / 50.0% / - / -) |" in rows[2]
    assert "| 70.0% ± 14.1% (50.0% / 60.0% / 70.0% / 80.0% / 90.0%) |" in rows[3]


def test_step_time_benchmark_times_both_memory_formats():
    from bench.step_time import CONFIGS, step_ms

    assert all(step_ms(CONFIGS["default"], channels_last, batch=2, seconds=0.5) > 0 for channels_last in (0, 1))
