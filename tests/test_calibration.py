"""Calibration: the temperature is fitted on held-out data, lives in the config, and every way of running the model
(EmotionRecognizer, pipeline, ONNX) returns the same calibrated probabilities with the argmax unchanged."""

import json

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import FIXTURE_CLIPS
from transformers import pipeline

import ser
from ser.export import export_onnx
from train import calibration


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(4000, 8))
    true_temperature = 2.5
    probabilities = calibration.softmax(logits / true_temperature)
    references = np.array([rng.choice(8, p=p) for p in probabilities])
    fitted = calibration.fit_temperature(logits, references)
    assert fitted == pytest.approx(true_temperature, rel=0.1)
    before = calibration.report(logits, references)
    after = calibration.report(logits / fitted, references)
    assert after["ece"] < 0.03 < before["ece"] and after["nll"] < before["nll"]
    assert sum(row["clips"] for row in after["reliability"]) == len(references) and len(after["reliability"]) == 15


def test_the_threshold_holds_back_what_is_mostly_wrong_and_risk_coverage_trades_them():
    probabilities = np.array([[0.4, 0.6], [0.35, 0.65], [0.3, 0.7], [0.2, 0.8], [0.1, 0.9], [0.05, 0.95]])
    references = np.array([0, 0, 1, 1, 1, 1])  # the two least confident clips are wrong, the rest right
    # Holding back the 3 least confident clips holds back 2 wrong and 1 right: still mostly wrong; 4 would be a tie.
    assert calibration.choose_threshold(probabilities, references) == pytest.approx(0.8)
    assert calibration.choose_threshold(probabilities, np.ones(6, int)) == 0.0  # all right: always answer
    rows = {round(r["threshold"], 2): r for r in calibration.risk_coverage(probabilities, references)}
    assert rows[0.0] == {"threshold": 0.0, "coverage": 1.0, "accuracy": pytest.approx(4 / 6)}
    assert rows[0.8]["coverage"] == pytest.approx(3 / 6) and rows[0.8]["accuracy"] == 1.0
    assert rows[0.65]["coverage"] == pytest.approx(5 / 6) and rows[0.65]["accuracy"] == pytest.approx(4 / 5)
    sits = calibration.at_threshold(probabilities, references, 0.8)  # answers 3 right, holds back 2 wrong + 1 right
    assert sits == {"threshold": 0.8, "coverage": 0.5, "accuracy_answered": 1.0,
                    "accuracy_held_back": pytest.approx(1 / 3)}
    assert calibration.at_threshold(probabilities, references, 0.0)["accuracy_held_back"] is None


def test_expected_calibration_error_by_hand():
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    references = np.array([0, 1, 0, 0])
    # Bin of 0.9: confidence 0.9, accuracy 0.5; bin of 0.6: confidence 0.6, accuracy 1.0.
    assert calibration.expected_calibration_error(probabilities, references) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)



def test_pooled_bins_are_the_bins_of_all_the_runs_clips_together():
    rng = np.random.default_rng(0)
    runs = [(rng.dirichlet(np.ones(8) * 0.5, size=n), rng.integers(0, 8, size=n)) for n in (240, 100)]
    pooled = calibration.pooled_reliability([calibration.reliability(p, r) for p, r in runs])
    together = calibration.reliability(np.concatenate([p for p, _ in runs]), np.concatenate([r for _, r in runs]))
    assert [row["clips"] for row in pooled] == [row["clips"] for row in together]
    assert calibration.binned_ece(pooled) == pytest.approx(
        calibration.expected_calibration_error(*map(np.concatenate, zip(*runs))))


def test_a_perfectly_calibrated_model_scores_the_sampling_floor_on_average_and_it_shrinks_with_more_clips():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(8), size=240) ** 3
    probabilities /= probabilities.sum(1, keepdims=True)
    # Labels drawn from the model's own probabilities: calibrated by construction, yet its ECE on 240 clips is not 0.
    eces, floors = [], []
    for _ in range(200):
        references = np.array([rng.choice(8, p=p) for p in probabilities])
        bins = calibration.reliability(probabilities, references)
        eces.append(calibration.binned_ece(bins))
        floors.append(calibration.ece_sampling_floor(bins))
    assert np.mean(eces) == pytest.approx(np.mean(floors), rel=0.15)
    assert np.mean(eces) > 0.03
    many = np.tile(probabilities, (10, 1))
    bins = calibration.reliability(many, np.array([rng.choice(8, p=p) for p in many]))
    assert calibration.ece_sampling_floor(bins) < np.mean(floors) / 2


@pytest.fixture(scope="module")
def calibrated_checkpoint(tmp_path_factory):
    """The embedded weights with a temperature of 2 and no "not sure" threshold written into the config, saved like
    a trained checkpoint."""
    path = tmp_path_factory.mktemp("calibrated")
    model = ser.load_model(ser.DEFAULT_MODEL)
    model.config.calibration_temperature, model.config.confidence_threshold = 2.0, 0.0
    model.save_pretrained(path)
    ser.new_feature_extractor(model.config).save_pretrained(path)
    return path


def test_every_path_returns_the_same_calibrated_probabilities(calibrated_checkpoint, tmp_path):
    waves = [ser.load_audio(str(clip)) for clip in FIXTURE_CLIPS[:6]]
    recognizer = ser.EmotionRecognizer(calibrated_checkpoint)
    labels = recognizer.labels
    library = np.array([[r[label] for label in labels] for r in recognizer.predict_batch(waves, sampling_rate=16000)])
    uncalibrated = ser.EmotionRecognizer(calibrated_checkpoint)
    uncalibrated.model.config.calibration_temperature = 1.0
    raw = uncalibrated.probabilities(waves)
    assert np.array_equal(library.argmax(-1), raw.argmax(-1))  # calibration never changes the answer
    assert library.max(-1).mean() < raw.max(-1).mean() - 0.05  # ... but a temperature of 2 does soften it
    classifier = pipeline("audio-classification", model=str(calibrated_checkpoint))
    piped = np.array([[{r["label"]: r["score"] for r in classifier(w, top_k=None)}[label] for label in labels]
                      for w in waves])
    export_onnx(str(calibrated_checkpoint), tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx = np.concatenate([calibration.softmax(session.run(["logits"], {"input_values": w[None]})[0]) for w in waves])
    np.testing.assert_allclose(piped, library, atol=1e-4)
    np.testing.assert_allclose(onnx, library, atol=1e-4)


def test_temperature_applies_in_eval_mode_only_and_an_old_checkpoint_behaves_as_before(random_checkpoint, tmp_path):
    config = json.loads((random_checkpoint / "config.json").read_text())
    config.pop("calibration_temperature", None)  # a checkpoint saved before the setting existed
    old = tmp_path / "old"
    old.mkdir()
    for item in random_checkpoint.iterdir():
        (old / item.name).write_bytes(item.read_bytes())
    (old / "config.json").write_text(json.dumps(config))
    model = ser.load_model(old)
    assert model.config.calibration_temperature == 1.0
    wave = torch.randn(2, 30000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        plain = model(wave).logits
        model.config.calibration_temperature = 4.0
        assert torch.allclose(model(wave).logits, plain / 4.0)
        model.train()
        torch.manual_seed(0)
        training = model(wave).logits
        model.config.calibration_temperature = 1.0
        torch.manual_seed(0)
        assert torch.equal(model(wave).logits, training)  # training sees raw logits
    with pytest.raises(ValueError, match="calibration_temperature"):
        ser.SERConfig(calibration_temperature=0.0)
    assert model.config.confidence_threshold == 0.0  # an old checkpoint always answers


def test_the_library_and_the_cli_say_not_sure_below_the_threshold(calibrated_checkpoint, tmp_path):
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    clip = str(FIXTURE_CLIPS[0])
    answers = ser.EmotionRecognizer(calibrated_checkpoint)
    scores = answers.predict(clip)
    assert answers.confidence_threshold == 0.0 and answers.sure(scores)
    doubting = ser.EmotionRecognizer(calibrated_checkpoint, confidence_threshold=0.99)
    assert doubting.predict(clip) == scores and not doubting.sure(scores)  # the same distribution, flagged
    strict = tmp_path / "strict"
    shutil.copytree(calibrated_checkpoint, strict)
    config = json.loads((strict / "config.json").read_text())
    (strict / "config.json").write_text(json.dumps({**config, "confidence_threshold": 0.99}))
    run = subprocess.run([sys.executable, "-m", "ser", "predict", clip, "--model", str(strict), "--top-k", "8"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "not sure" in run.stdout and len(run.stdout.split(":")[1].split()) >= 16  # all 8 still shown
