"""The page in a real browser: headless Chromium (Debian's `chromium` package) driven by Playwright opens
the app, uploads a clip through the upload control and sees the predicted emotion.

Playwright only drives the installed binary (`executable_path`); it never downloads a browser.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
from app_server import ROOT, running_app
from conftest import FIXTURE

import ser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
ANGRY = FIXTURE / "Actor_01" / "03-01-05-01-01-01-01.flac"
WAIT_MS = 180_000  # generous: a busy CI machine is slow, and these are waits, not timing assertions

if not CHROMIUM.exists():
    pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium; scripts/setup.sh --dev does it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements-dev.txt)")
HAS_DEFAULT_MODEL = (Path(ser.DEFAULT_MODEL) / "config.json").is_file()


@pytest.fixture(scope="module")
def server(random_checkpoint, tmp_path_factory):
    # The default model when it is there, as a newcomer's `python app.py` runs it; else an untrained one.
    args = [] if HAS_DEFAULT_MODEL else ["--model", str(random_checkpoint)]
    with running_app(*args, workdir=tmp_path_factory.mktemp("browser_app")) as url:
        yield url


@pytest.fixture
def page(tmp_path):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def upload(page, url, path):
    page.goto(url)
    page.locator("input[type=file]").first.set_input_files(str(path))


def test_upload_shows_the_predicted_emotion(server, page, tmp_path):
    upload(page, server, ANGRY)
    top = page.get_by_test_id("label-output-value")
    sync_api.expect(top).to_be_visible(timeout=WAIT_MS)
    assert top.inner_text().strip() in ser.RAVDESS_EMOTIONS
    for emotion in ser.RAVDESS_EMOTIONS:  # all eight, with their confidences
        sync_api.expect(page.get_by_test_id(f"{emotion}-confidence-set")).to_be_visible()
    # The clip is longer than the model's 3 s window, so its timeline is drawn too.
    sync_api.expect(page.get_by_test_id("matplotlib").locator("img")).to_be_visible(timeout=WAIT_MS)
    sync_api.expect(page.get_by_text("Overall: ")).to_be_visible()
    # A real prediction of the default model is worth showing in the README; an untrained one is not.
    target = SCREENSHOT if HAS_DEFAULT_MODEL else tmp_path / "screenshot.png"
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


def test_silent_upload_says_there_is_no_speech(server, page, tmp_path):
    silent = tmp_path / "silence.wav"
    subprocess.run([shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "anullsrc=r=48000:cl=mono:d=3", "-c:a", "pcm_s16le", str(silent)], check=True)
    upload(page, server, silent)
    sync_api.expect(page.get_by_text("No speech found: the audio is silent")).to_be_visible(timeout=WAIT_MS)
    sync_api.expect(page.get_by_test_id("label-output-value")).to_have_count(0)
