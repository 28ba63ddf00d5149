"""The speech detector (`ser.vad`, Silero VAD): it refuses tones, noise and music-like sounds, accepts real
speech, chooses the timeline's windows and gates the app's Live tab."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
from conftest import FIXTURE, FIXTURE_CLIPS, ROOT

import app
import ser
from bench.vad import non_speech_set
from ser import vad

RATE = 16000
ANGRY = FIXTURE / "Actor_01" / "03-01-05-01-01-01-01.flac"
SAD = FIXTURE / "Actor_03" / "03-01-04-01-01-01-03.flac"


@pytest.fixture(scope="module")
def recognizer(random_checkpoint):
    return ser.EmotionRecognizer(random_checkpoint)


def issue_tone():
    """The issue's example: a 3 s 440 Hz tone, which the energy gate let through as 'calm'."""
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * RATE) / RATE)).astype(np.float32)


def issue_noise():
    """The issue's other example: eight channels of white noise (channels first), once 'disgust'."""
    return (0.1 * np.random.default_rng(0).standard_normal((8, 3 * RATE))).astype(np.float32)


@pytest.mark.parametrize("make", [issue_tone, issue_noise], ids=["440 Hz tone", "8-channel white noise"])
def test_the_issues_tone_and_noise_are_refused(recognizer, make):
    with pytest.raises(ser.NoSpeechError, match="no speech found: the audio holds sound, but no voice"):
        recognizer.predict(make(), RATE)
    [(_, result)] = list(recognizer.predict_many([{"raw": make(), "sampling_rate": RATE}]))
    assert isinstance(result, ser.NoSpeechError)


def test_every_generated_non_speech_clip_is_refused():
    items = non_speech_set()
    assert len({item["kind"] for item in items}) >= 12 and len(items) >= 80
    accepted = []
    for item in items:
        try:
            vad.require_speech(ser.load_audio(item["audio"], RATE, source_rate=item["rate"]), RATE)
            accepted.append(f"{item['kind']}: {item['name']}")
        except ser.NoSpeechError:
            pass
    assert not accepted


def test_every_fixture_clip_is_accepted(recognizer):
    results = recognizer.predict_batch([str(clip) for clip in FIXTURE_CLIPS])
    assert len(results) == len(FIXTURE_CLIPS) == 32
    assert all(set(scores) == set(ser.RAVDESS_EMOTIONS) for scores in results)


@pytest.mark.parametrize("gain_db", [-20, -45])
def test_quiet_speech_is_still_speech(recognizer, gain_db):
    # The model is level-independent, and so is the detector down to its silence floor (-70 dBFS peak).
    wave = ser.load_audio(ANGRY) * 10 ** (gain_db / 20)
    assert set(recognizer.predict(wave, RATE)) == set(ser.RAVDESS_EMOTIONS)


def test_silence_and_sound_without_voice_get_their_own_message(recognizer):
    with pytest.raises(ser.NoSpeechError, match="no speech found: the audio is silent"):
        recognizer.predict(np.zeros(2 * RATE, np.float32), RATE)
    with pytest.raises(ser.NoSpeechError, match="no speech found: the audio is silent"):  # a DC offset is silence
        recognizer.predict(np.full(2 * RATE, 0.25, np.float32), RATE)
    # a 0.1 s word in 2.9 s of tone: speech, but not enough to judge
    wave = issue_tone()
    word = ser.load_audio(ANGRY)
    loud = int(np.argmax(np.abs(word) > 0.5 * np.abs(word).max()))
    wave[RATE: RATE + 1600] = word[loud: loud + 1600] / np.abs(word).max() * 0.3
    with pytest.raises(ser.NoSpeechError):
        recognizer.predict(wave, RATE)


def test_the_detector_is_silero_vad_run_frame_by_frame_with_its_state():
    """Our onnxruntime loop gives what silero-vad's own sequence model wrapper gives on the same (normalized)
    samples, and what its streaming model gives frame by frame."""
    threads = torch.get_num_threads()
    try:
        import silero_vad  # its import sets torch's thread count to 1, which ser.vad avoids
        from silero_vad.sequence_vad import SileroVADSequence
    finally:
        torch.set_num_threads(threads)
    wave = ser.load_audio(SAD)
    normalized = wave - wave.mean()
    normalized = normalized * (vad.PEAK / np.abs(normalized).max())
    ours = vad.speech_probabilities(wave)
    model_file = str(vad.model_path())
    reference = SileroVADSequence(model_file).audio_forward(normalized.astype(np.float32))
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    streaming = silero_vad.load_silero_vad(onnx=True)
    torch.set_num_threads(threads)
    frames = np.zeros(len(ours) * vad.FRAME, np.float32)
    frames[: len(normalized)] = normalized
    frame_by_frame = streaming.audio_forward(torch.from_numpy(frames), RATE).numpy().reshape(-1)
    np.testing.assert_allclose(ours, frame_by_frame, atol=1e-4)
    assert (ours >= vad.THRESHOLD).sum() * vad.FRAME_SECONDS > 1.0  # over a second of speech in a 3.5 s sentence


def test_pieces_give_the_frames_of_the_whole():
    # Fed in pieces of any size, the detector scores the same frames as fed whole, carrying its state over. Each
    # piece is scaled to its own peak, so here every piece has the whole's peak and a mean of zero.
    wave = ser.load_audio(ANGRY).astype(np.float64)
    cuts = [0, 700, 701, 5000, 21000, len(wave)]
    peak = np.abs(wave).max()
    for a, b in zip(cuts, cuts[1:]):
        piece = wave[a:b]
        piece[np.argmax(np.abs(piece))] = peak
        piece -= piece.mean()
    wave = wave.astype(np.float32)
    whole = vad.speech_probabilities(wave)
    stream = vad.SpeechStream()
    parts = [stream.push(wave[a:b]) for a, b in zip(cuts, cuts[1:])]
    assert [len(p) for p in parts] == [b // vad.FRAME - a // vad.FRAME for a, b in zip(cuts, cuts[1:])]
    np.testing.assert_allclose(np.concatenate(parts + [stream.finish()]), whole, atol=1e-4)
    assert stream.speech_frames == np.count_nonzero(whole >= vad.THRESHOLD) > 20


def test_the_timeline_skips_noise_between_two_sentences(recognizer, tmp_path):
    # angry sentence, 8 s of white noise as loud as the speech, sad sentence: the energy gate took the noise
    # for speech; the detector skips every window that lies in it.
    angry, sad = ser.load_audio(ANGRY), ser.load_audio(SAD)
    noise = np.random.default_rng(3).standard_normal(8 * RATE).astype(np.float32)
    noise *= np.sqrt(np.mean(angry[np.abs(angry) > 0.1 * np.abs(angry).max()] ** 2))
    path = tmp_path / "talk.flac"
    soundfile.write(path, np.concatenate([angry, noise, sad]), RATE)
    timeline = recognizer.timeline(path)
    gap = (len(angry) / RATE + 0.3, (len(angry) + len(noise)) / RATE - 0.3)
    assert not [s for s in timeline.segments if s.start >= gap[0] and s.end <= gap[1]]
    assert any(s.end <= gap[0] + 1.5 for s in timeline.segments)  # the first sentence is scored
    assert any(s.start >= gap[1] - 1.5 for s in timeline.segments)  # and the second
    # the same audio given as one array (one piece) gives the same windows
    array = recognizer.timeline(np.concatenate([angry, noise, sad]), RATE)
    assert [(s.start, s.end) for s in array.segments] == [(s.start, s.end) for s in timeline.segments]


def test_a_long_file_in_pieces_is_scored_like_the_array(recognizer, tmp_path):
    # 70 s: the file is decoded in 30 s pieces; the windows chosen match those of the whole array.
    clips = [ser.load_audio(clip) for clip in FIXTURE_CLIPS[:20]]
    wave = np.concatenate(clips)[: 70 * RATE]
    path = tmp_path / "long.flac"
    soundfile.write(path, wave, RATE)
    from_file, from_array = recognizer.timeline(path), recognizer.timeline(wave, RATE)
    assert len(from_file.segments) > 20
    assert [(s.start, s.end) for s in from_file.segments] == [(s.start, s.end) for s in from_array.segments]


def test_a_timeline_of_noise_alone_is_refused(recognizer):
    noise = np.random.default_rng(4).standard_normal(10 * RATE).astype(np.float32) * 0.1
    with pytest.raises(ser.NoSpeechError, match="no speech found"):
        recognizer.timeline(noise, RATE)


def test_the_live_tab_says_no_speech_for_a_tone(recognizer):
    tone = (issue_tone() * 32767).astype(np.int16)
    buffer = None
    for second in range(3):
        label, status, buffer = app.live_step(recognizer, (RATE, tone[second * RATE: (second + 1) * RATE]), buffer)
        assert label is None and status.startswith("Listening… no speech in the last")
    speech = (ser.load_audio(ANGRY) * 32767).astype(np.int16)
    label, status, buffer = app.live_step(recognizer, (RATE, speech), buffer)
    assert set(label) == set(ser.RAVDESS_EMOTIONS) and status.startswith("From the last 3.0 s")


def test_the_cli_refuses_a_tone_in_one_line(random_checkpoint, tmp_path):
    tone = tmp_path / "tone.wav"
    soundfile.write(tone, issue_tone(), RATE)
    run = subprocess.run([sys.executable, "-m", "ser", "predict", str(tone), "--model", str(random_checkpoint)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tone}: no speech found: the audio holds sound, but no voice"]


def test_using_the_detector_leaves_torch_threads_alone():
    # silero_vad's own import sets torch's thread count to 1 for the process; ser.vad does not import it.
    code = ("import torch; torch.set_num_threads(2); import ser, numpy as np; from ser import vad; "
            f"vad.require_speech(ser.load_audio('{ANGRY}'), 16000); print(torch.get_num_threads())")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "2"


def test_a_hop_longer_than_the_window_keeps_windows_on_their_samples(recognizer):
    # 4 s hops over 3 s windows, the audio arriving in pieces (as a file's are decoded) that end between windows:
    # each window is still the audio at its own start.
    wave = np.concatenate([ser.load_audio(clip) for clip in FIXTURE_CLIPS[:12]])
    cut = int(31.5 * RATE)  # the window at 28 s ends at 31 s; the next starts at 32 s, after this piece
    timeline = recognizer._timeline(iter([wave[:cut], wave[cut:]]), hop_seconds=4.0)
    assert len(timeline.segments) >= 8 and all(s.start % 4.0 == 0 for s in timeline.segments)
    assert any(s.start >= 32 for s in timeline.segments)
    for segment in timeline.segments:
        alone = recognizer.probabilities([wave[int(segment.start * RATE): int(segment.end * RATE)]])[0]
        np.testing.assert_allclose([segment.scores[k] for k in recognizer.labels], alone, atol=1e-5)
