"""The Gradio app: `python app.py` on a localhost port, driven through `gradio_client` like a program would,
plus its timeline and live-microphone functions called directly."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from app_server import ROOT, running_app
from conftest import FIXTURE, ffmpeg
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from matplotlib.figure import Figure

import app
import ser

ANGRY = FIXTURE / "Actor_01" / "03-01-05-01-01-01-01.flac"
SAD = FIXTURE / "Actor_03" / "03-01-04-01-01-01-03.flac"
MAX_SECONDS = 20


@pytest.fixture(scope="module")
def recognizer(random_checkpoint):
    return ser.EmotionRecognizer(random_checkpoint)


@pytest.fixture(scope="module")
def server(random_checkpoint, tmp_path_factory):
    # The model comes from SER_MODEL here (the browser test covers the default), the limit from the flag.
    with running_app("--max-seconds", str(MAX_SECONDS), env={"SER_MODEL": str(random_checkpoint)},
                     workdir=tmp_path_factory.mktemp("app")) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


def scores(result: dict) -> dict[str, float]:
    """A gr.Label value as the client returns it -> {label: probability}, keeping its order."""
    return {c["label"]: c["confidence"] for c in result["confidences"]}


def check_label(result: dict, expected: dict[str, float], atol: float = 1e-4):
    got = scores(result)
    assert set(got) == set(ser.RAVDESS_EMOTIONS)
    assert math.isclose(sum(got.values()), 1.0, abs_tol=1e-4)
    assert list(got.values()) == sorted(got.values(), reverse=True)
    assert result["label"] == next(iter(got))
    # The app answers what the library answers for the same file: the same model, the same decoding.
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=atol)


@pytest.mark.parametrize("suffix,options", [(".wav", []), (".mp3", ["-b:a", "128k"])])
def test_predict_endpoint_answers_for_wav_and_mp3(client, recognizer, tmp_path, suffix, options):
    path = ffmpeg(ANGRY, tmp_path / f"angry{suffix}", *options)
    result = client.predict(handle_file(str(path)), api_name="/predict")
    check_label(result, recognizer.predict(str(path)))


def test_microphone_recording_48k_stereo_int16(client, recognizer, tmp_path):
    # What a browser's microphone delivers: 48 kHz, 16-bit, two channels.
    path = ffmpeg(SAD, tmp_path / "mic.wav", "-ar", "48000", "-ac", "2", "-c:a", "pcm_s16le")
    result = client.predict(handle_file(str(path)), api_name="/predict")
    # The app answers what the library answers for the same recording; and since identical channels downmix to the
    # mono original, its top emotion is the fixture clip's (its scores move by up to 0.01 with 16-bit rounding).
    check_label(result, recognizer.predict(str(path)))
    assert result["label"] == next(iter(recognizer.predict(str(SAD))))


def make_silence(path, seconds):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"anullsrc=r=48000:cl=mono:d={seconds}", "-c:a", "pcm_s16le", str(path)], check=True)
    return path


def test_bad_inputs_get_clear_messages_and_the_app_keeps_serving(client, recognizer, tmp_path):
    silent = make_silence(tmp_path / "silence.wav", 3)
    short = ffmpeg(ANGRY, tmp_path / "short.wav", "-ss", "1.5", "-t", "0.1")
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 50)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(ffmpeg(ANGRY, tmp_path / "full.wav").read_bytes()[:40])
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    too_long = ffmpeg(ANGRY, tmp_path / "long.mp3", "-filter_complex", "aloop=loop=7:size=2e9", "-t", "30")

    cases = [(silent, "No speech found: the audio is silent"), (short, "at least 200 ms"),
             (text, "not a readable audio file.*please use an audio file"), (garbage, "not a readable audio file"),
             (truncated, "not a readable audio file"), (empty, "empty"),
             (too_long, f"longer than this app accepts \\({MAX_SECONDS:.1f} s\\)")]
    for path, message in cases:
        with pytest.raises(AppError, match=message) as error:
            client.predict(handle_file(str(path)), api_name="/predict")
        assert "/gradio/" not in str(error.value), "the server's temporary path leaked into the message"
    # Uploads are size-limited (max_file_size); the client learns the limit from the server.
    big = tmp_path / "big.wav"
    with open(big, "wb") as file:
        file.truncate(51 * 2**20)
    with pytest.raises(ValueError, match="exceeds the maximum file size of 52428800 bytes"):
        client.predict(handle_file(str(big)), api_name="/predict")
    # Nothing above broke the server: a good clip still gets its answer.
    check_label(client.predict(handle_file(str(ANGRY)), api_name="/predict"), recognizer.predict(str(ANGRY)))


def test_named_endpoint_is_documented(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/predict"]
    (parameter,) = api["named_endpoints"]["/predict"]["parameters"]
    assert parameter["component"] == "Audio"
    assert [r["component"] for r in api["named_endpoints"]["/predict"]["returns"]] == ["Label"]


def test_unreachable_hub_model_exits_with_one_clear_line(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "--model", "nobody/no-such-ser-model"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot load the model from nobody/no-such-ser-model")
    assert "network" in last and "--model DIR" in last


def test_timeline_of_a_long_recording_skips_the_silence(recognizer, tmp_path):
    # angry clip, 5 s of silence, sad clip: the windows that fall entirely in the silence are skipped.
    path = tmp_path / "talk.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(ANGRY), "-i", str(SAD),
                    "-filter_complex", "[0]apad=pad_dur=5[a];[a][1]concat=n=2:v=0:a=1", str(path)], check=True)
    overall, timeline = app.analyze(recognizer, str(path), max_seconds=600)
    first = ser.load_audio(ANGRY).size / 16000
    gap = (first + 0.5, first + 4.5)  # well inside the 5 s of silence
    assert timeline.duration > first + 5
    assert overall == timeline.overall and math.isclose(sum(overall.values()), 1.0, abs_tol=1e-4)
    assert len(timeline.segments) >= 3
    assert any(s.start < gap[0] for s in timeline.segments) and any(s.end > gap[1] for s in timeline.segments)
    assert not [s for s in timeline.segments if s.start >= gap[0] and s.end <= gap[1]]
    figure = app.timeline_figure(timeline, recognizer.labels, recognizer.config.window_seconds)
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert len(figure.axes[1].get_lines()) >= 1
    summary = app.timeline_summary(timeline)
    assert summary.startswith(f"**Overall: {next(iter(overall))}**")
    skipped = float(summary.split("); ")[1].split(" s without speech")[0])
    assert skipped >= 2


def test_a_single_clip_has_no_timeline(recognizer):
    # A RAVDESS clip (about 4 s) is scored whole, as the library's predict does, without a timeline.
    overall, timeline = app.analyze(recognizer, str(ANGRY), max_seconds=600)
    assert timeline is None and overall == recognizer.predict(str(ANGRY))


def test_live_stream_keeps_a_rolling_window(recognizer, tmp_path):
    # The streaming microphone sends (rate, int16 array) chunks, here 1 s of 48 kHz stereo each.
    raw = ffmpeg(ANGRY, tmp_path / "mic.raw", "-ar", "48000", "-ac", "2", "-f", "s16le")
    speech = np.fromfile(raw, dtype=np.int16).reshape(-1, 2)
    chunks = [speech[i: i + 48000] for i in range(0, len(speech), 48000)]
    buffer = None
    for chunk in chunks:
        label, status, buffer = app.live_step(recognizer, (48000, chunk), buffer)
        assert buffer[1].shape[1] == 2 and len(buffer[1]) <= 3 * 48000
    assert set(label) == set(ser.RAVDESS_EMOTIONS) and status.startswith("From the last 3.0 s")
    expected = recognizer.predict(speech[-3 * 48000:], 48000)
    np.testing.assert_allclose([label[k] for k in expected], list(expected.values()), atol=1e-5)
    # Three seconds of silence push the speech out of the window: no emotion is made up.
    for _ in range(3):
        label, status, buffer = app.live_step(recognizer, (48000, np.zeros((48000, 2), np.int16)), buffer)
    assert label is None and "no speech" in status


def test_command_line_options(monkeypatch):
    monkeypatch.setenv("SER_MAX_SECONDS", "30")
    monkeypatch.setenv("SER_MODEL", "someone/model")
    args = app.parse_args([])
    assert (args.max_seconds, args.model, args.port) == (30.0, "someone/model", None)
    args = app.parse_args(["--max-seconds", "5", "--model", "dir", "--port", "9000"])
    assert (args.max_seconds, args.model, args.port) == (5.0, "dir", 9000)
    monkeypatch.delenv("SER_MODEL")
    assert app.parse_args([]).model == ser.DEFAULT_MODEL
    with pytest.raises(SystemExit):
        app.parse_args(["--max-seconds", "-1"])
