"""The `datasets` recipe of docs/batch.md, run as written (only its three settings changed) on the fixture clips."""

import csv
import os
import re
import subprocess
import sys

import pytest
from conftest import FIXTURE, FIXTURE_CLIPS, ROOT

import ser

DOC = ROOT / "docs" / "batch.md"


def recipe_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/batch.md should hold exactly one python block: the recipe"
    return blocks[0]


def with_settings(code: str, **settings) -> str:
    for name, value in settings.items():
        code, count = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", code, flags=re.M)
        assert count == 1, f"the recipe should set {name} once at the top"
    return code


@pytest.fixture(scope="module")
def recipe_rows(random_checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("recipe")
    script = folder / "predict_dataset.py"
    script.write_text(with_settings(recipe_code(), DATA=str(FIXTURE), MODEL=str(random_checkpoint), NUM_PROC=2))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_DATASETS_CACHE": str(folder / "cache"), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return list(csv.DictReader((folder / "emotions.csv").open()))


def test_recipe_scores_every_clip_like_predict(recipe_rows, random_checkpoint):
    recognizer = ser.EmotionRecognizer(random_checkpoint)
    # audiofolder lists the files in sorted order and map keeps it, so rows line up with the sorted clips
    assert len(recipe_rows) == len(FIXTURE_CLIPS) == 32
    for row, clip in zip(recipe_rows, FIXTURE_CLIPS):
        expected = recognizer.predict(clip)
        assert row["error"] == ""
        assert row["emotion"] == next(iter(expected)), clip
        for label in recognizer.labels:
            assert float(row[label]) == pytest.approx(expected[label], rel=1e-4, abs=1e-12), (clip, label)
        # the other columns of the dataset are kept: audiofolder's label is the actor folder
        assert int(row["label"]) == int(clip.parent.name.split("_")[1]) - 1
