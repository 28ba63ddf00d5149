"""bench.tta scores fold models in one pass and with the checkpoint's own test-time speed averaging."""

import json
import shutil

import evaluate
import numpy as np
from conftest import FIXTURE

import ser
from bench.tta import label, score_folds


def test_folds_are_scored_in_one_pass_and_with_the_models_own_averaging(tmp_path):
    from train import corpora, data

    dataset = corpora.load_ravdess(str(FIXTURE))
    waves = data.as_arrays(dataset)["input_values"]
    labels, actors = np.asarray(dataset["emotion"]), np.asarray(dataset["actor"])
    for fold in (1, 2):
        shutil.copytree(ser.DEFAULT_MODEL, tmp_path / f"fold{fold}" / "model")
        (tmp_path / f"fold{fold}" / "metrics.json").write_text(json.dumps({"actors": {"train": [1, 2],
                                                                                      "test": [fold + 2]}}))
    result = score_folds(tmp_path, [0.9, 1.1], waves, labels, actors, fold_numbers=(1, 2))

    averaged = label([0.9, 1.1])
    assert averaged == "speed 0.9x / 1.1x" and result["candidate"] == averaged
    assert {key for key in result if ":" in key} == {"test: one pass", f"test: {averaged}"}
    assert json.loads((tmp_path / "tta.json").read_text())[f"test: {averaged}"] == result[f"test: {averaged}"]

    # The figures are those of the recognizer as users run it, with test_time_speeds [] and [0.9, 1.1].
    from train.train import METRICS_MODULE

    metric = evaluate.load(METRICS_MODULE)
    rows = np.flatnonzero(actors == 3)
    clips = [np.asarray(waves[i], dtype=np.float32) for i in rows]
    for name, speeds in (("one pass", []), (averaged, [0.9, 1.1])):
        recognizer = ser.EmotionRecognizer(ser.DEFAULT_MODEL)
        recognizer.model.config.test_time_speeds = speeds
        predictions = recognizer.probabilities(clips).argmax(-1)
        expected = metric.compute(predictions=predictions, references=labels[rows], num_labels=8)
        assert result["folds"]["1"]["test"][name]["unweighted_accuracy"] == expected["unweighted_accuracy"]
