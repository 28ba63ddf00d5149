"""The page in a real browser: headless Chromium (Debian's `chromium` package) driven by Playwright opens
the app, uploads a clip through the upload control and sees the predicted emotion.

Playwright only drives the installed binary (`executable_path`); it never downloads a browser.
"""

import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from app_server import ROOT, running_app
from conftest import FIXTURE, ffmpeg

import app
import ser

pytestmark = pytest.mark.slow  # a real browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
ANGRY = FIXTURE / "Actor_01" / "03-01-05-01-01-01-01.flac"
SURPRISED = FIXTURE / "Actor_02" / "03-01-08-01-01-01-02.flac"
WAIT_MS = 180_000  # generous: a busy CI machine is slow, and these are waits, not timing assertions
FIRST_CHUNK_MS = 60_000  # the live tab's first update takes a few seconds even beside a training

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


@contextmanager
def browser_page(profile: Path, *extra_args: str):
    """A new page in a fresh headless Chromium profile."""
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS + list(extra_args),
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture
def page(tmp_path):
    with browser_page(tmp_path / "profile") as page:
        yield page


@pytest.fixture
def mic_page(tmp_path):
    """A page whose microphone plays a fixture clip, as 48 kHz 16-bit audio, in a loop."""
    speech = ffmpeg(ANGRY, tmp_path / "microphone.wav", "-ar", "48000", "-c:a", "pcm_s16le")
    with browser_page(tmp_path / "profile", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-audio-capture={speech}") as page:
        yield page


def upload(page, url, path):
    page.goto(url)
    page.locator("input[type=file]").first.set_input_files(str(path))


def test_upload_shows_the_predicted_emotion(server, page, tmp_path):
    upload(page, server, SURPRISED)
    top = page.get_by_test_id("label-output-value")
    sync_api.expect(top).to_be_visible(timeout=WAIT_MS)
    assert top.inner_text().strip() in ser.RAVDESS_EMOTIONS
    for emotion in ser.RAVDESS_EMOTIONS:  # all eight, with their confidences
        sync_api.expect(page.get_by_test_id(f"{emotion}-confidence-set")).to_be_visible()
    sync_api.expect(page.get_by_test_id("matplotlib")).to_have_count(0)  # one clip: no timeline
    # A real prediction of the default model is worth showing in the README; an untrained one is not.
    # The README's screenshot is refreshed on request only, so a test run leaves the tree clean.
    update = HAS_DEFAULT_MODEL and os.environ.get("SER_UPDATE_SCREENSHOT") == "1"
    target = SCREENSHOT if update else tmp_path / "screenshot.png"
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


def test_long_recording_shows_a_timeline(server, page, tmp_path):
    talk = tmp_path / "talk.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(ANGRY), "-i", str(SURPRISED),
                    "-filter_complex", "[0]apad=pad_dur=4[a];[a][1]concat=n=2:v=0:a=1", str(talk)], check=True)
    upload(page, server, talk)
    sync_api.expect(page.get_by_test_id("matplotlib").locator("img")).to_be_visible(timeout=WAIT_MS)
    sync_api.expect(page.get_by_text("Overall: ")).to_be_visible()
    assert page.get_by_test_id("label-output-value").inner_text().strip() in ser.RAVDESS_EMOTIONS


def test_a_clip_below_the_confidence_threshold_says_not_sure(page, tmp_path):
    """A checkpoint whose threshold no answer reaches: the page still shows every emotion, and says "Not sure"."""
    import json
    import shutil

    strict = tmp_path / "strict"
    shutil.copytree(ser.DEFAULT_MODEL, strict)
    config = json.loads((strict / "config.json").read_text())
    (strict / "config.json").write_text(json.dumps({**config, "confidence_threshold": 0.999}))
    with running_app("--model", str(strict), workdir=tmp_path / "app") as url:
        upload(page, url, SURPRISED)
        sync_api.expect(page.get_by_text("Not sure.")).to_be_visible(timeout=WAIT_MS)
        for emotion in ser.RAVDESS_EMOTIONS:
            sync_api.expect(page.get_by_test_id(f"{emotion}-confidence-set")).to_be_visible()


def test_silent_upload_says_there_is_no_speech(server, page, tmp_path):
    silent = tmp_path / "silence.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "anullsrc=r=48000:cl=mono:d=3", "-c:a", "pcm_s16le", str(silent)], check=True)
    upload(page, server, silent)
    sync_api.expect(page.get_by_text("No speech found: the audio is silent")).to_be_visible(timeout=WAIT_MS)
    sync_api.expect(page.get_by_test_id("label-output-value")).to_have_count(0)


def test_microphone_recording_is_predicted(server, mic_page):
    mic_page.goto(server)
    mic_page.get_by_label("Record audio").click()
    mic_page.get_by_role("button", name="Record", exact=True).click()
    mic_page.wait_for_timeout(4000)  # record about 4 s of the looping clip
    mic_page.get_by_role("button", name="Stop", exact=True).click()
    top = mic_page.get_by_test_id("label-output-value")
    sync_api.expect(top).to_be_visible(timeout=WAIT_MS)
    assert top.inner_text().strip() in ser.RAVDESS_EMOTIONS


def test_live_tab_follows_the_microphone(server, mic_page):
    mic_page.goto(server)
    mic_page.get_by_role("tab", name="Live").click()
    record, stop = (mic_page.get_by_role("button", name=name, exact=True) for name in ("Record", "Stop"))
    record.click()
    # Until the first update, the page says what to expect and what to do if no audio comes.
    sync_api.expect(mic_page.get_by_text(app.LIVE_STARTED)).to_be_visible(timeout=5000)
    # Under CPU load Gradio's streaming microphone sometimes never sends its first chunk: no upload and no stream
    # request follow the click (1 in 4 to 6 runs beside a training, never seen on an idle machine). A user would
    # click again, and so does this test, once; a stream that never starts still fails below.
    try:
        sync_api.expect(mic_page.get_by_text(re.compile("From the last|Listening|Waiting"))).to_be_visible(
            timeout=FIRST_CHUNK_MS)
    except AssertionError:
        stop.click()
        record.click()
    sync_api.expect(mic_page.get_by_text("From the last 3.0 s of speech.")).to_be_visible(timeout=WAIT_MS)
    top = mic_page.get_by_test_id("label-output-value")
    assert top.inner_text().strip() in ser.RAVDESS_EMOTIONS
    mic_page.get_by_role("button", name="Stop", exact=True).click()
