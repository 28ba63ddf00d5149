"""`python -m ser predict`: output, batch files, and one-line errors with non-zero exit codes."""

import csv
import json
import subprocess
import sys

import pytest
from conftest import FIXTURE, FIXTURE_CLIPS, ROOT, ffmpeg


def run_ser(*args, model):
    return subprocess.run([sys.executable, "-m", "ser", *args, "--model", str(model)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def one_line_error(run):
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) >= 1 and "Traceback" not in run.stderr
    return lines


def test_predict_prints_top_emotions_for_each_format(random_checkpoint, tmp_path):
    source = FIXTURE_CLIPS[3]
    files = [source, ffmpeg(source, tmp_path / "a.wav", "-ac", "2", "-ar", "44100"),
             ffmpeg(source, tmp_path / "a.mp3"), ffmpeg(source, tmp_path / "a.ogg", "-c:a", "libvorbis")]
    run = run_ser("predict", *map(str, files), "--top-k", "2", model=random_checkpoint)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 4
    for path, line in zip(files, lines):
        assert line.startswith(f"{path}: ")
        assert len(line.split(": ", 1)[1].split()) == 4  # two labels with two scores


@pytest.mark.parametrize("content,message", [(b"", "empty"), (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not a readable audio"),
                                             (b"hello, this is text\n" * 20, "not a readable audio")])
def test_unreadable_input_is_one_line_and_exit_code(random_checkpoint, tmp_path, content, message):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    lines = one_line_error(run_ser("predict", str(bad), model=random_checkpoint))
    assert message in lines[0] and str(bad) in lines[0]


def test_missing_model_folder_is_one_line(tmp_path):
    lines = one_line_error(run_ser("predict", str(FIXTURE_CLIPS[0]), model=tmp_path / "nothing"))
    assert "cannot load the model" in lines[0]


@pytest.mark.parametrize("device,message", [("cuda:7", "not available here"), ("gpu0", "unknown device")])
def test_unusable_device_is_one_line(random_checkpoint, device, message):
    lines = one_line_error(run_ser("predict", str(FIXTURE_CLIPS[0]), "--device", device, model=random_checkpoint))
    assert message in lines[0]


def test_batch_over_a_folder_writes_csv_and_skips_bad_files(random_checkpoint, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for clip in FIXTURE_CLIPS[:5]:
        (folder / clip.name).write_bytes(clip.read_bytes())
    (folder / "broken.wav").write_bytes(b"not audio at all")
    out = tmp_path / "results.csv"
    run = run_ser("predict", str(folder), "--batch-size", "2", "--output", str(out), model=random_checkpoint)
    assert run.returncode == 1  # some input was skipped
    assert "skipped" in run.stderr and "broken.wav" in run.stderr
    rows = list(csv.DictReader(out.open()))
    assert sorted(r["path"].rsplit("/", 1)[1] for r in rows) == sorted(c.name for c in FIXTURE_CLIPS[:5])
    for row in rows:
        probs = [float(row[label]) for label in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                                                 "surprised")]
        assert abs(sum(probs) - 1) < 1e-3 and row["label"] in row


def test_batch_jsonl_over_a_glob(random_checkpoint, tmp_path):
    out = tmp_path / "results.jsonl"
    run = run_ser("predict", str(FIXTURE / "Actor_03" / "*.flac"), "--output", str(out), model=random_checkpoint)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8 and all(len(r["scores"]) == 8 for r in rows)


def test_timeline_on_a_long_recording(random_checkpoint, tmp_path):
    # Three clips back to back, with silence between: several windows, silent ones skipped.
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"file '{c}'\n" for c in FIXTURE_CLIPS[8:11]))
    long = tmp_path / "long.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing), str(long)],
                   check=True)
    run = run_ser("predict", str(long), "--timeline", model=random_checkpoint)
    assert run.returncode == 0, run.stderr
    segments = [line for line in run.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(segments) >= 3
    assert "overall:" in run.stdout
