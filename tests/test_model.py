"""The model as a transformers audio classifier: Auto classes, pipeline, save/load, remote code."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import FIXTURE_CLIPS, ffmpeg
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

import ser


def test_default_labels_are_ravdess_emotions_in_official_order():
    config = ser.SERConfig()
    assert [config.id2label[i] for i in range(8)] == [
        "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert config.label2id["surprised"] == 7 and config.num_labels == 8


@pytest.mark.parametrize("variant", [
    {},
    {"features": "mfcc", "n_mels": 64, "deltas": True, "channels": [24, 48, 96, 192]},
    {"pooling": "mean"},
    {"pooling": "attention"},
    {"encoder": "cnn1d", "deltas": False, "channels": [32, 64]},
    {"trim_silence_db": None, "window_seconds": 4.0},
    {"pooling": "attention", "features": "mfcc", "n_mfcc": 13, "channels": [8, 16, 32]},
])
def test_variants_are_one_config_away_and_train(variant):
    model = ser.SERForAudioClassification(ser.SERConfig(**variant))
    waves = torch.randn(4, 30000) * 0.1
    labels = torch.tensor([0, 3, 5, 7])
    out = model(waves, labels=labels)
    assert out.logits.shape == (4, 8) and out.loss.item() > 0
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_stats_pooling_keeps_a_small_spread_around_a_large_mean():
    """float32 loses E[x^2] - mean^2 when the mean is large; the centred standard deviation does not."""
    from ser.modeling_ser import TimePooling

    torch.manual_seed(0)
    x = 1000 + 0.01 * torch.randn(2, 4, 150)
    pooled = TimePooling(ser.SERConfig(pooling="stats"), channels=4)(x)
    assert torch.allclose(pooled[:, 4:], x.std(-1, correction=0), rtol=1e-3)


def test_invalid_config_values_are_refused():
    for bad in ({"features": "chroma"}, {"encoder": "transformer"}, {"pooling": "max"}):
        with pytest.raises(ValueError):
            ser.SERConfig(**bad)


def test_test_time_speeds_average_the_probabilities_of_resampled_copies():
    """The trained default model on real clips: with test_time_speeds the eval-mode output is the average of the
    class probabilities of the clip and of its copies resampled as if played at each speed; training ignores it."""
    import torchaudio

    model = ser.EmotionRecognizer().model
    waves = torch.stack([torch.from_numpy(ser.load_audio(f, 16000)[:48000]) for f in FIXTURE_CLIPS[:4]])
    with torch.no_grad():
        single = [model(w[None]).logits.softmax(-1) for w in waves]
        slow = [model(torchaudio.functional.resample(w[None], 14400, 16000)).logits.softmax(-1) for w in waves]
        fast = [model(torchaudio.functional.resample(w[None], 17600, 16000)).logits.softmax(-1) for w in waves]
        expected = (torch.cat(single) + torch.cat(slow) + torch.cat(fast)) / 3
        model.config.test_time_speeds = [0.9, 1.1]
        try:
            averaged = model(waves).logits.softmax(-1)
            model.train()
            torch.manual_seed(0)
            training = model(waves).logits
            model.config.test_time_speeds = []
            torch.manual_seed(0)
            assert torch.equal(model(waves).logits, training)
        finally:
            model.config.test_time_speeds = []
            model.eval()
    assert torch.allclose(averaged, expected, atol=1e-5)
    assert (averaged - torch.cat(single)).abs().max() > 0.02  # the copies do change the answer
    with pytest.raises(ValueError, match="between 0.5 and 2.0"):
        ser.SERConfig(test_time_speeds=[0.0])
    assert ser.SERConfig(test_time_speeds=[0.9, 1.1]).to_dict()["test_time_speeds"] == [0.9, 1.1]


def test_window_skips_leading_silence():
    config = ser.SERConfig(window_seconds=1.0, trim_silence_db=35.0)
    front = ser.SERForAudioClassification(config).front_end
    speech = torch.randn(8000) * 0.3
    wave = torch.cat([torch.zeros(16000), speech, torch.zeros(16000)])[None]
    window = front.select_window(wave)[0]
    assert window.shape == (16000,)
    onset = int(torch.nonzero(window.abs() > 0.05)[0])
    assert onset <= 400  # the window starts within one analysis frame of the speech onset
    start = int(torch.argmax(torch.stack([torch.corrcoef(torch.stack([window[s: s + 8000], speech]))[0, 1]
                                          for s in range(401)])))
    assert start == onset  # the speech itself, shifted and scaled, not something else
    assert torch.corrcoef(torch.stack([window[start: start + 8000], speech]))[0, 1] > 0.9999


def test_features_ignore_gain_and_dc_offset(clip):
    model = ser.SERForAudioClassification(ser.SERConfig()).eval()
    clip = torch.from_numpy(ser.load_audio(clip, 16000))[None]
    reference = model.front_end(clip)
    for changed in (clip * 0.05, clip * 8, clip + 0.1):
        assert torch.allclose(model.front_end(changed), reference, atol=1e-3)
    # Without loudness normalization the gain does change the features: the check above is not vacuous.
    plain = ser.SERForAudioClassification(ser.SERConfig(normalize_loudness=False)).front_end
    assert not torch.allclose(plain(clip * 0.05), plain(clip), atol=1e-1)


def test_save_and_load_give_identical_logits(tmp_path):
    config = ser.SERConfig()
    model = ser.SERForAudioClassification(config)
    shape = (config.num_feature_channels, config.num_coefficients)
    model.front_end.set_normalization(torch.randn(shape), torch.rand(shape) + 0.5)
    model.eval()
    model.save_pretrained(tmp_path)
    files = sorted(os.listdir(tmp_path))
    assert "model.safetensors" in files and not [f for f in files if f.endswith((".bin", ".pt", ".pkl"))]
    assert {"configuration_ser.py", "modeling_ser.py"} <= set(files)
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"]["AutoModelForAudioClassification"] == \
        "modeling_ser.SERForAudioClassification"
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, ser.SERForAudioClassification)
    assert torch.equal(loaded.front_end.feature_mean, model.front_end.feature_mean)
    wave = torch.randn(2, 40000) * 0.1
    with torch.no_grad():
        assert torch.equal(model(wave).logits, loaded(wave).logits)


def test_auto_classes_load_a_checkpoint(random_checkpoint):
    assert isinstance(AutoConfig.from_pretrained(random_checkpoint), ser.SERConfig)
    extractor = AutoFeatureExtractor.from_pretrained(random_checkpoint)
    assert extractor.sampling_rate == 16000
    batch = extractor([np.ones(100, np.float32), np.ones(50, np.float32)], sampling_rate=16000,
                      padding=True, return_tensors="pt")
    assert batch["input_values"].shape == (2, 100)


@pytest.fixture(scope="module")
def classifier(random_checkpoint):
    return pipeline("audio-classification", model=str(random_checkpoint))


def assert_emotions(result, k=8):
    assert len(result) == k
    assert {r["label"] for r in result} <= set(ser.RAVDESS_EMOTIONS)
    scores = [r["score"] for r in result]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_pipeline_on_files_at_any_rate_mono_and_stereo(classifier, tmp_path, rate, channels):
    path = ffmpeg(FIXTURE_CLIPS[4], tmp_path / "clip.wav", "-ar", str(rate), "-ac", str(channels))
    assert sf.info(path).samplerate == rate and sf.info(path).channels == channels
    assert_emotions(classifier(str(path), top_k=8))


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_pipeline_on_arrays_and_dicts(classifier, rate):
    wave = ser.load_audio(str(FIXTURE_CLIPS[4]), rate)
    from_dict = classifier({"raw": wave, "sampling_rate": rate}, top_k=8)
    assert_emotions(from_dict)
    if rate == 16000:
        assert_emotions(classifier(wave, top_k=8))
    # A stereo array goes through ser.load_audio (the pipeline itself takes mono only).
    stereo = np.stack([wave, wave], axis=1)
    mono = ser.load_audio({"raw": stereo, "sampling_rate": rate}, 16000)
    reference = classifier({"raw": wave, "sampling_rate": rate}, top_k=8)
    again = classifier(mono, top_k=8)
    assert [r["label"] for r in again] == [r["label"] for r in reference]
    assert np.allclose([r["score"] for r in again], [r["score"] for r in reference], atol=1e-4)


@pytest.mark.parametrize("which", ["random", "embedded"])
def test_trust_remote_code_in_a_clean_process(which, random_checkpoint, tmp_path):
    """A process that never imported `ser` and cannot find it loads the checkpoint from its own code files."""
    import shutil

    source = random_checkpoint if which == "random" else ser.DEFAULT_MODEL
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(source, checkpoint)
    model = AutoModelForAudioClassification.from_pretrained(source).eval()
    wave = torch.randn(1, 30000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        expected = model(wave).logits[0].tolist()
    script = textwrap.dedent(f"""
        import importlib.util, json, sys, torch
        from transformers import AutoModelForAudioClassification, pipeline
        assert importlib.util.find_spec("ser") is None, "ser must not be importable here"
        model = AutoModelForAudioClassification.from_pretrained({str(checkpoint)!r}, trust_remote_code=True).eval()
        wave = torch.randn(1, 30000, generator=torch.Generator().manual_seed(0)) * 0.1
        with torch.no_grad():
            logits = model(wave).logits[0].tolist()
        result = pipeline("audio-classification", model={str(checkpoint)!r}, trust_remote_code=True)(wave[0].numpy())
        assert "ser" not in sys.modules
        print(json.dumps({{"logits": logits, "top": result[0]["label"], "type": type(model).__name__}}))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_MODULES_CACHE"] = str(tmp_path / "modules")
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["type"] == "SERForAudioClassification"
    assert np.allclose(out["logits"], expected, atol=1e-5)
    assert out["top"] in ser.RAVDESS_EMOTIONS


def test_embedded_checkpoint_carries_the_current_code():
    """The code files beside the embedded weights are the package's own (scripts/embed_model.py writes them with
    save_pretrained), so a `trust_remote_code` load runs the same model as `import ser`."""
    folder = Path(ser.DEFAULT_MODEL)
    for name in ("configuration_ser.py", "modeling_ser.py"):
        assert (folder / name).read_text() == (Path(ser.__file__).parent / name).read_text(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == ser.SERConfig.model_type
    assert set(config) - {"architectures", "auto_map", "dtype", "transformers_version"} <= set(ser.SERConfig().to_dict())


def test_checkpoints_saved_under_the_old_model_type_still_load(random_checkpoint, tmp_path):
    import shutil

    shutil.copytree(random_checkpoint, tmp_path / "old")
    config_file = tmp_path / "old" / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "model_type": "ser-mfcc-cnn", "frequency_pooling": "mean",
                                       "utterance_mean_norm_db": None}))
    wave = torch.randn(1, 30000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        expected = AutoModelForAudioClassification.from_pretrained(random_checkpoint).eval()(wave).logits
        for old in (AutoModelForAudioClassification.from_pretrained(tmp_path / "old"), ser.load_model(tmp_path / "old")):
            assert isinstance(old, ser.SERForAudioClassification)
            assert torch.equal(old.eval()(wave).logits, expected)


@pytest.mark.parametrize("freq_mask_param, time_mask_param", [(8, 20), (0, 20), (8, 0)])
def test_spec_augment_masks_only_the_axes_given_a_width(freq_mask_param, time_mask_param):
    """A mask width of 0 turns that kind of mask off; the other kind still masks."""
    torch.manual_seed(0)
    config = ser.SERConfig(freq_mask_param=freq_mask_param, time_mask_param=time_mask_param, num_masks=1)
    features = torch.rand(16, 1, config.n_mels, 150) + 1.0  # no zeros before masking
    masked = ser.SERForAudioClassification(config).spec_augment(features) == 0
    bands_masked = masked.all(dim=-1).any().item()  # a whole mel band zeroed in some clip
    frames_masked = masked.all(dim=-2).any().item()  # a whole frame zeroed in some clip
    assert (bands_masked, frames_masked) == (freq_mask_param > 0, time_mask_param > 0)
