import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# Every test run loads fixture folders from fresh temporary paths, and `datasets` caches each under a new key: in the
# user's ~/.cache that grows with every run. Set before anything imports `datasets`, which reads it once.
HF_DATASETS_CACHE = tempfile.mkdtemp(prefix="ser-tests-datasets-")
os.environ["HF_DATASETS_CACHE"] = HF_DATASETS_CACHE

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import ser  # noqa: E402


def pytest_unconfigure(config):
    shutil.rmtree(HF_DATASETS_CACHE, ignore_errors=True)

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
    torch.manual_seed(0)  # the same weights on every run, so no test depends on a lucky draw
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
