"""bench.tta's altered copies, on a real clip: each keeps the speech and changes only what it claims to."""

import numpy as np
from conftest import FIXTURE_CLIPS

import ser
from bench.tta import CANDIDATES, load, pitch, speed, tempo


def frequency_scale(original, copy, rate=16000):
    """The factor s for which the copy's long-term log spectrum at s*f best matches the original's at f
    (100-3000 Hz, searched from 0.9 to 1.2 in steps of 0.005)."""
    n = 1 << 17
    freqs = np.fft.rfftfreq(n, 1 / rate)
    grid = np.linspace(100, 3000, 600)
    reference = np.log(np.interp(grid, freqs, np.abs(np.fft.rfft(original, n))) + 1e-9)
    spectrum = np.abs(np.fft.rfft(copy, n))
    return max(np.arange(0.9, 1.2, 0.005),
               key=lambda s: np.corrcoef(np.log(np.interp(grid * s, freqs, spectrum) + 1e-9), reference)[0, 1])


def test_copies_change_length_and_pitch_as_named():
    wave = ser.load_audio(str(FIXTURE_CLIPS[0]), 16000)
    assert abs(len(speed(wave, 1.1)) - len(wave) / 1.1) <= 2
    assert abs(len(speed(wave, 0.9)) - len(wave) / 0.9) <= 2
    assert abs(len(tempo(wave, 1.1)) - len(wave) / 1.1) < 0.01 * len(wave)
    assert len(pitch(wave, 1.0)) == len(wave)
    assert abs(frequency_scale(wave, speed(wave, 1.1)) - 1.1) < 0.01  # resampling moves pitch with tempo
    assert abs(frequency_scale(wave, tempo(wave, 1.1)) - 1.0) < 0.01  # time stretch keeps the pitch
    assert abs(frequency_scale(wave, pitch(wave, 1.0)) - 2 ** (1 / 12)) < 0.01  # one semitone up
    assert all(len(copies) == 2 for copies in CANDIDATES.values())


def test_load_predicts_in_one_pass(tmp_path):
    """The screen applies candidates itself, so a checkpoint's own test-time averaging is turned off."""
    model = ser.SERForAudioClassification(ser.SERConfig(test_time_speeds=[0.9, 1.1]))
    model.save_pretrained(tmp_path)
    ser.new_feature_extractor(model.config).save_pretrained(tmp_path)
    assert load(tmp_path).model.config.test_time_speeds == []


def test_fold_models_without_validation_actors_are_scored_on_their_test_actors(tmp_path):
    """Fold models trained on every non-test actor (the default since 2026-11-27) list no validation actors."""
    import json

    from bench.tta import score_folds
    from train import data

    dataset = data.load_ravdess(str(FIXTURE_CLIPS[0].parent.parent))
    waves = data.as_arrays(dataset)["input_values"]
    labels, actors = np.asarray(dataset["emotion"]), np.asarray(dataset["actor"])
    model = ser.SERForAudioClassification(ser.SERConfig())
    for fold in range(1, 7):
        model.save_pretrained(tmp_path / f"fold{fold}" / "model")
        ser.new_feature_extractor(model.config).save_pretrained(tmp_path / f"fold{fold}" / "model")
        split_actors = {"actors": {"train": [1, 2], "test": [3, 4]}}
        (tmp_path / f"fold{fold}" / "metrics.json").write_text(json.dumps(split_actors))
    result = score_folds(tmp_path, "speed 0.9x / 1.1x", waves, labels, actors)
    assert {key for key in result if ":" in key} == {"test: one pass", "test: speed 0.9x / 1.1x"}
    assert all(set(fold) == {"test"} for fold in result["folds"].values())
    assert json.loads((tmp_path / "tta.json").read_text())["test: one pass"] == result["test: one pass"]
