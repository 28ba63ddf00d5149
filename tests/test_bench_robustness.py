"""The degradations of `python -m bench.robustness`, measured on real fixture clips: each does what its name
and the benchmark's README claim (SNR, band, level, codec alignment), and fold selection fails clearly.

The benchmark itself needs the trained fold models and the complete data set, so it is not run here."""

import datasets
import numpy as np
import pytest
from conftest import FIXTURE

import ser
from bench import robustness as R
from ser.audio import frame_samples, speech_frames

RATE = 16000
CLIPS = {actor: [FIXTURE / f"Actor_{actor:02d}" / f"03-01-0{e}-01-01-01-{actor:02d}.flac" for e in (1, 3, 5, 6)]
         for actor in (1, 2)}


@pytest.fixture(scope="module")
def fold():
    """8 fixture clips of two actors, as the test clips of one fold."""
    paths = CLIPS[1] + CLIPS[2]
    return R.FoldClips(waves=[ser.load_audio(p) for p in paths], actors=np.array([1] * 4 + [2] * 4),
                       references=np.zeros(8, dtype=int), keys=[(int(p.stem[-2:]), i) for i, p in enumerate(paths)])


@pytest.fixture(scope="module")
def wave(fold):
    return fold.waves[6]  # actor 2, angry: a loud clip


def in_speech_frames(wave):
    """The samples inside the frames the energy detector marks as speech in `wave`, computed here rather than by
    the benchmark's own helper."""
    frame, hop = frame_samples(RATE)
    samples = np.zeros(len(wave), dtype=bool)
    for index in np.flatnonzero(speech_frames(wave, RATE)):
        samples[index * hop: index * hop + frame] = True
    return samples


def speech_power(wave, frames_of=None):
    """Mean power over the speech frames of `frames_of` (default: `wave`)."""
    x = wave.astype(np.float64) - wave.mean()
    return np.mean(x[in_speech_frames(wave if frames_of is None else frames_of)] ** 2)


def band_energy(wave, low, high):
    spectrum = np.abs(np.fft.rfft(wave.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / RATE)
    return spectrum[(freqs >= low) & (freqs < high)].sum()


def db(ratio):
    return 10 * np.log10(ratio)


@pytest.mark.parametrize("snr", [20, 10, 5])
@pytest.mark.parametrize("kind", ["white", "pink"])
def test_noise_is_added_at_the_target_snr_with_the_right_colour(wave, kind, snr):
    noise_fn = R.white_noise if kind == "white" else R.pink_noise
    noisy = R.add_noise(wave, noise_fn(len(wave), np.random.default_rng(1)), snr)
    assert noisy.dtype == np.float32 and noisy.shape == wave.shape
    noise = noisy.astype(np.float64) - wave
    measured = db(speech_power(wave) / np.mean((noise - noise.mean()) ** 2))  # noise over the whole clip
    assert abs(measured - snr) < 0.5, measured
    # White noise has equal power per Hz: the 4-8 kHz octave holds 8x (9 dB) the power of 0.5-1 kHz.
    # Pink noise has equal power per octave: about 0 dB.
    tilt = db(band_energy(noise, 4000, 8000) / band_energy(noise, 500, 1000))
    assert (7.5 < tilt < 10.5) if kind == "white" else (abs(tilt) < 1.5), tilt


def test_babble_uses_only_other_actors_at_the_target_snr(fold):
    for index in (0, 5):
        for seed in range(20):
            chosen = R.babble_talkers(fold, index, np.random.default_rng(seed))
            assert 3 <= len(chosen) <= 5 and len(set(chosen)) == len(chosen)
            assert all(fold.actors[c] != fold.actors[index] for c in chosen)
    target = fold.waves[1]
    noisy = R.babble(fold, 1, np.random.default_rng(0), 10)
    babble = noisy.astype(np.float64) - target
    in_speech = babble[in_speech_frames(target)]
    assert abs(db(speech_power(target) / np.mean((in_speech - babble.mean()) ** 2)) - 10) < 0.5
    # Talkers are looped speech, so the babble is continuous rather than silent where its clips were silent.
    frame = int(0.025 * RATE)
    levels = np.mean(babble[: len(babble) // frame * frame].reshape(-1, frame) ** 2, axis=1)
    assert np.mean(levels > levels.max() / 1e4) > 0.9  # >90 % of frames within 40 dB of the loudest


def test_too_few_other_actors_for_babble_is_an_error(fold):
    one_actor = R.FoldClips(fold.waves[:4], fold.actors[:4], fold.references[:4], fold.keys[:4])
    with pytest.raises(ValueError, match="other actors"):
        R.babble(one_actor, 0, np.random.default_rng(0), 10)


def test_degradations_are_reproducible_per_seed(fold):
    first, again = R.degrade(fold, "white_10db", seed=0), R.degrade(fold, "white_10db", seed=0)
    other = R.degrade(fold, "white_10db", seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[0] - fold.waves[0], first[1][: len(fold.waves[0])] - fold.waves[0])


def test_telephone_keeps_300_to_3400_hz_only(wave):
    phone = R.telephone(wave)
    assert phone.shape == wave.shape and phone.dtype == np.float32
    assert band_energy(phone, 3600, 8001) / band_energy(phone, 0, 8001) < 1e-3
    assert db(band_energy(wave, 3600, 8001) / band_energy(phone, 3600, 8001)) > 20
    assert db(band_energy(wave, 0, 150) / band_energy(phone, 0, 150)) > 20
    assert abs(db(band_energy(phone, 500, 3000) / band_energy(wave, 500, 3000))) < 0.5


def test_gain_is_exactly_minus_20_db(wave):
    quiet = R.gain(wave)
    assert abs(db(np.mean(quiet.astype(np.float64) ** 2) / np.mean(wave.astype(np.float64) ** 2)) + 20) < 1e-4


def test_clipping_flattens_the_peaks_at_the_same_speech_level(wave):
    clipped = R.hard_clip(wave)
    assert abs(db(speech_power(clipped, frames_of=wave) / speech_power(wave))) < 0.01
    top = np.abs(clipped).max()
    assert np.sum(np.abs(clipped) >= top * (1 - 1e-6)) > 100  # flat tops, where the clean clip has one peak
    assert np.sum(np.abs(wave) >= np.abs(wave).max() * (1 - 1e-6)) < 5
    # Samples below 10 % of the peak are only scaled, not distorted.
    below = np.abs(wave) < 0.1 * np.abs(wave).max()
    ratio = clipped[below] / np.where(wave[below] == 0, 1, wave[below])
    assert np.allclose(ratio[wave[below] != 0], ratio[wave[below] != 0][0], rtol=1e-4)


@pytest.mark.parametrize("roundtrip", [R.mp3_roundtrip, R._mp3_roundtrip_ffmpeg], ids=["torchcodec", "ffmpeg"])
def test_mp3_roundtrip_is_32_kbps_and_lines_up(wave, roundtrip):
    decoded, size = roundtrip(wave, RATE, 32000)
    assert abs(len(decoded) - len(wave)) <= 0.005 * RATE  # within 5 ms
    assert abs(size * 8 / (len(wave) / RATE) - 32000) < 0.15 * 32000
    n = min(len(decoded), len(wave))
    lags = np.arange(-1500, 1501)  # encoder + decoder delay of MP3 is ~1100 samples when not compensated
    correlation = [np.dot(np.roll(decoded[:n], -lag), wave[:n]) for lag in lags]
    assert abs(lags[int(np.argmax(correlation))]) <= 1
    error = db(np.mean(wave[:n].astype(np.float64) ** 2) / np.mean((decoded[:n] - wave[:n].astype(np.float64)) ** 2))
    assert 8 < error < 40, error  # lossy, but the same signal
    assert len(R.degrade(R.FoldClips([wave], np.array([2]), np.zeros(1, int), [(0,)]), "mp3_32k")[0]) == len(wave)


def test_a_fold_without_clips_of_its_test_actors_is_a_clear_error(fold):
    ds = datasets.Dataset.from_dict({"input_values": [w.tolist() for w in fold.waves[:2]], "emotion": [0, 4],
                                     "actor": [1, 1]})
    with pytest.raises(ValueError, match=r"none of its test actors \[7, 9\] has clips in DATA.*actors \[1\]"):
        R.fold_clips(ds, [7, 9], list(ser.RAVDESS_EMOTIONS), 3, "DATA")
    clips, info = R.fold_clips(ds, [1, 11], list(ser.RAVDESS_EMOTIONS), 1, "DATA")
    assert len(clips.waves) == 2 and info["missing_actors"] == [11] and list(clips.references) == [0, 4]


def test_validation_actors_come_from_the_folds_metrics_and_only_training_actors_count_as_seen(tmp_path):
    import json

    (tmp_path / "metrics.json").write_text(json.dumps({"actors": {"train": [2, 3, 4], "validation": [14, 17],
                                                                   "test": [1, 11]}}))
    assert R.resolve_test_actors(1, tmp_path, None) == ([1, 11], str(tmp_path / "metrics.json"), [2, 3, 4, 14, 17])
    actors, source, seen = R.resolve_test_actors(1, tmp_path, None, validation=True)
    assert actors == [14, 17] and source.endswith("(validation)") and seen == [2, 3, 4]
    (tmp_path / "metrics.json").write_text(json.dumps({"actors": {"train": [2, 3, 4], "test": [1, 11]}}))
    with pytest.raises(ValueError, match="lists no validation actors"):
        R.resolve_test_actors(1, tmp_path, None, validation=True)


def test_per_actor_scores_are_each_actors_own_unweighted_accuracy(fold):
    import evaluate
    from sklearn.metrics import recall_score

    from train.train import METRICS_MODULE

    recognizer = ser.EmotionRecognizer()
    references = np.array([e - 1 for _ in range(2) for e in (1, 3, 5, 6)])  # file names' emotion field, 1-based
    clips = R.FoldClips(waves=fold.waves, actors=fold.actors, references=references, keys=fold.keys)
    scores = R.score(recognizer, clips, clips.waves, evaluate.load(METRICS_MODULE), batch_size=3)
    predictions = recognizer.probabilities(clips.waves).argmax(-1)
    for actor in (1, 2):
        rows = clips.actors == actor
        expected = recall_score(references[rows], predictions[rows], average="macro", labels=np.unique(references))
        assert scores["unweighted_accuracy_per_actor"][str(actor)] == pytest.approx(expected)
    assert scores["unweighted_accuracy"] == pytest.approx(
        recall_score(references, predictions, average="macro", labels=np.unique(references)))

    conditions = {"clean": scores, "babble_10db": {"unweighted_accuracy_per_actor": {"1": 0.9, "2": 0.1}}}
    report = {"summary": {"clean": {}, "babble_10db": {}}, "folds": {"3": {"conditions": conditions}}}
    table = R.per_actor_table(report)
    rows = [line for line in table if line.startswith("| 1 |") or line.startswith("| 2 |")]
    hardest_first = sorted((1, 2), key=lambda a: scores["unweighted_accuracy_per_actor"][str(a)])
    assert [int(line.split("|")[1]) for line in rows] == hardest_first
    assert all(line.split("|")[2].strip() == "3" for line in rows)


def test_test_time_speeds_option_scores_the_folds_as_the_embedded_model_predicts(fold, tmp_path, monkeypatch):
    """`--test-time-speeds` replaces each checkpoint's own setting, so fold models can be scored with or without the
    opt-in test-time averaging; without it, the checkpoint's own setting stays."""
    import json
    import shutil

    import evaluate

    from train.train import METRICS_MODULE

    shutil.copytree(ser.DEFAULT_MODEL, tmp_path / "fold1" / "model")
    (tmp_path / "fold1" / "metrics.json").write_text(json.dumps({"actors": {"train": [3], "test": [1, 2]}}))
    emotions = [int(p.stem[6:8]) - 1 for p in CLIPS[1] + CLIPS[2]]
    ds = datasets.Dataset.from_dict({"input_values": [w.tolist() for w in fold.waves], "emotion": emotions,
                                     "actor": fold.actors.tolist()})
    metric = evaluate.load(METRICS_MODULE)
    used, real_score = [], R.score

    def recording_score(recognizer, clips, waves, metric, batch_size):
        used.append(list(recognizer.model.config.test_time_speeds))
        return real_score(recognizer, clips, waves, metric, batch_size)

    monkeypatch.setattr(R, "score", recording_score)
    own = ser.EmotionRecognizer(tmp_path / "fold1" / "model").model.config.test_time_speeds
    for speeds, expected in ((None, own), ([], []), ([0.9, 1.1], [0.9, 1.1])):
        result = R.run_fold(1, tmp_path, ds, "DATA", ["clean"], None, 0, 4, metric, test_time_speeds=speeds)
        assert used[-1] == expected
        assert 0 <= result["conditions"]["clean"]["unweighted_accuracy"] <= 1
