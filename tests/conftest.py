import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import ser

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "ravdess"
FIXTURE_CLIPS = sorted(FIXTURE.glob("Actor_*/*.flac"))
# The complete RAVDESS speech set, for the tests that need it: RAVDESS_DIR, or the workplace copy.
FULL_RAVDESS = Path(os.environ.get("RAVDESS_DIR", ROOT.parent / "shared" / "data" / "ravdess"))
needs_full_ravdess = pytest.mark.skipif(
    len(list(FULL_RAVDESS.glob("Actor_*/*"))) < 1440,
    reason=f"needs the complete RAVDESS speech set (1440 clips) in {FULL_RAVDESS}; set RAVDESS_DIR",
)


def ffmpeg(source, target, *options):
    """Convert with the ffmpeg command line (an independent encoder, so tests do not grade our own decoder)."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *options, str(target)],
                   check=True)
    return target


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory):
    """An untrained model saved like a real checkpoint: fast, for plumbing tests."""
    path = tmp_path_factory.mktemp("random_checkpoint")
    config = ser.SERConfig()
    model = ser.SERForAudioClassification(config)
    model.save_pretrained(path)
    ser.new_feature_extractor(config).save_pretrained(path)
    return path


@pytest.fixture
def clip():
    return FIXTURE / "Actor_02" / "03-01-05-01-01-01-02.flac"


def tone(seconds=1.0, rate=16000, freq=220.0, amplitude=0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
