"""Speech emotion recognition in the browser: record or upload speech and see the emotion.

    python app.py                                 # the embedded checkpoint, http://127.0.0.1:7860
    python app.py --port 8000 --model USER/NAME   # a Hub model (downloaded once, then cached)
    SER_MODEL=runs/x/model python app.py          # a local checkpoint folder

Programs call the named endpoint `/predict` (see README). All decoding, resampling and speech checks
happen in `ser`; this file only wires them to a page.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a server draws figures off screen, from worker threads

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import ser  # noqa: E402
from ser.audio import ACCEPTED, audio_duration  # noqa: E402
from ser.card import learned_from  # noqa: E402
from ser.inference import CLIP_WINDOWS, Timeline  # noqa: E402

log = logging.getLogger("ser.app")

ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT / "tests" / "fixtures" / "ravdess"
# (file, caption): one clip per actor, clearly different emotions.
EXAMPLES = [
    ("Actor_01/03-01-05-01-01-01-01.flac", "angry (actor 1)"),
    ("Actor_02/03-01-03-01-01-01-02.flac", "happy (actor 2)"),
    ("Actor_03/03-01-04-01-01-01-03.flac", "sad (actor 3)"),
    ("Actor_04/03-01-06-01-01-01-04.flac", "fearful (actor 4)"),
    ("Actor_02/03-01-08-01-01-01-02.flac", "surprised (actor 2)"),
]
MAX_FILE_SIZE = "50mb"
CONCURRENCY = 2  # predictions running at once; the model is CPU-bound, more would only share the cores
QUEUE_SIZE = 64  # waiting requests beyond this are told the queue is full instead of piling up
LIVE_EVERY = 1.0  # seconds of microphone audio per live update
# Shown from the Record click until the first update replaces it. Gradio's streaming microphone sometimes sends no
# audio at all after the click on a busy machine; a second click starts it.
LIVE_STARTED = ("Recording: the first result comes after about 1 s of audio. Nothing after a few seconds? Press "
                "Stop, then Record again.")
EMOTION_COLORS = {
    "neutral": "#9e9e9e", "calm": "#4db6ac", "happy": "#fbc02d", "sad": "#1e88e5",
    "angry": "#e53935", "fearful": "#8e24aa", "disgust": "#43a047", "surprised": "#fb8c00",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("SER_MODEL") or ser.DEFAULT_MODEL,
                        help="checkpoint folder or Hub id (default: $SER_MODEL, else the embedded checkpoint)")
    parser.add_argument("--port", type=int, default=None,
                        help="port on 127.0.0.1 (default: $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--max-seconds", type=_positive, default=os.environ.get("SER_MAX_SECONDS", "600"),
                        help="longest recording the app accepts, in seconds (default: $SER_MAX_SECONDS, else 600)")
    return parser.parse_args(argv)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _minutes(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _page_error(error: ser.AudioError, path: str) -> gr.Error:
    """The library's message, without the server's temporary path of the upload and with what a page accepts."""
    message = str(error).replace(str(path), "the uploaded file")
    message = message.replace(f"expected {ACCEPTED}", "please use an audio file (WAV, FLAC, MP3, OGG, M4A, WebM)")
    message = message[0].upper() + message[1:]
    if isinstance(error, ser.NoSpeechError):
        return gr.Error(f"{message}. Nothing to judge, so no emotion is shown.", title="No speech",
                        print_exception=False)
    # print_exception=False: an unusable upload is an answer, not a server fault, so no traceback in the log.
    return gr.Error(message, title="Cannot use this audio", print_exception=False)


def analyze(recognizer: ser.EmotionRecognizer, path: str | None, max_seconds: float):
    """Emotion probabilities of the audio file at `path` and, for a recording longer than a clip (what
    `EmotionRecognizer.predict` scores whole), its `Timeline` (else None). Every unusable input raises
    `gr.Error` with a message for the page.

    Args:
        recognizer: the loaded model.
        path: the uploaded or recorded file (Gradio's temporary copy); None when the input was cleared.
        max_seconds: the longest recording accepted.
    """
    if path is None:
        return None, None

    def too_long(seconds: float) -> gr.Error:
        return gr.Error(f"The recording is {_minutes(seconds)} long, longer than this app accepts "
                        f"({_minutes(max_seconds)}). Cut it into parts, or run `python -m ser predict --timeline "
                        "FILE` on your own machine, which has no limit.", title="Too long",
                        print_exception=False)

    clip_seconds = CLIP_WINDOWS * recognizer.config.window_seconds  # up to this the library scores a clip whole
    try:
        stated = audio_duration(path)  # refuse a long file before decoding it
        if stated is not None and stated > max_seconds + 0.5:
            raise too_long(stated)
        if stated is None or stated > clip_seconds:
            # A recording (or one of unknown length, e.g. browser WebM): decoded piece by piece by the library.
            timeline = recognizer.timeline(path)
            if timeline.duration > max_seconds + 0.5:
                raise too_long(timeline.duration)
            if timeline.duration > clip_seconds:
                return timeline.overall, timeline  # the same scores `predict` gives, plus the segments
        return recognizer.predict(path), None
    except ser.AudioError as error:
        raise _page_error(error, path) from None
    except gr.Error:
        raise
    except Exception as error:  # a bug must still end in a message, not a spinner
        log.exception("prediction failed for %s", path)
        raise gr.Error(f"Something went wrong while analyzing this audio ({type(error).__name__}). "
                       "The error was logged; please try another file.") from None


def _color(label: str, labels: list[str]) -> str:
    return EMOTION_COLORS.get(label) or matplotlib.colormaps["tab10"](labels.index(label) % 10)


def timeline_figure(timeline: Timeline, labels: list[str], window_seconds: float) -> Figure:
    """Two rows over time: a band colored by each segment's most likely emotion (silence left gray), and
    the probability of the emotions that lead anywhere (or overall), one line per emotion.

    Args:
        timeline: the segments, overall scores and duration from `EmotionRecognizer.timeline`.
        labels: all class names, for stable colors.
        window_seconds: the model's window; segments start every half window.
    """
    segments, duration = timeline.segments, timeline.duration
    hop = window_seconds / 2
    centers = [(s.start + s.end) / 2 for s in segments]
    # Neighbouring segments overlap by half a window: each one owns the time closer to its center.
    adjacent = [b.start - a.start <= hop + 1e-6 for a, b in zip(segments, segments[1:])]
    lows = [s.start if i == 0 or not adjacent[i - 1] else (centers[i - 1] + centers[i]) / 2
            for i, s in enumerate(segments)]
    highs = [s.end if i == len(segments) - 1 or not adjacent[i] else (centers[i] + centers[i + 1]) / 2
             for i, s in enumerate(segments)]

    figure = Figure(figsize=(9, 3.8), layout="constrained")
    band, lines = figure.subplots(2, 1, sharex=True, height_ratios=[1, 4])
    band.axvspan(0, duration, color="#eeeeee")
    run_start = 0  # name each run of neighbouring segments with the same emotion once
    for i, (segment, low, high) in enumerate(zip(segments, lows, highs)):
        confidence = segment.scores[segment.label]
        band.axvspan(low, high, color=_color(segment.label, labels), alpha=0.35 + 0.65 * confidence, lw=0)
        if i + 1 == len(segments) or not adjacent[i] or segments[i + 1].label != segment.label:
            if high - lows[run_start] >= duration / 14:
                band.text((lows[run_start] + high) / 2, 0.5, segment.label, ha="center", va="center", fontsize=9)
            run_start = i + 1
    band.set_yticks([])
    band.set_title("Most likely emotion over time (gray: no speech)", fontsize=10, loc="left")

    shown = list(dict.fromkeys([s.label for s in segments] + list(timeline.overall)[:3]))
    for label in labels:
        if label not in shown:
            continue
        values = [s.scores[label] for s in segments]
        xs, ys = [centers[0]], [values[0]]
        for i in range(1, len(segments)):
            if not adjacent[i - 1]:  # a skipped silence: break the line
                xs.append(np.nan)
                ys.append(np.nan)
            xs.append(centers[i])
            ys.append(values[i])
        lines.plot(xs, ys, marker="o", markersize=3, lw=2, color=_color(label, labels), label=label)
    lines.set_xlim(0, duration)
    lines.set_ylim(0, 1)
    lines.set_xlabel("time (s)")
    lines.set_ylabel("probability")
    lines.grid(alpha=0.3)
    lines.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
    return figure


def timeline_summary(timeline: Timeline) -> str:
    """One line: the overall emotion, how many segments it averages and how much silence was skipped."""
    top, probability = next(iter(timeline.overall.items()))
    covered, end = 0.0, 0.0
    for segment in timeline.segments:
        covered += max(0.0, segment.end - max(segment.start, end))
        end = max(end, segment.end)
    silent = max(0.0, timeline.duration - covered)
    leading = sum(s.label == top for s in timeline.segments)
    text = (f"**Overall: {top}** ({probability:.0%}), the mean of {len(timeline.segments)} overlapping segments "
            f"({leading} of them led by {top})")
    return text + (f"; {_minutes(silent)} without speech skipped." if silent >= 0.1 else ".")


def not_sure_text(recognizer: ser.EmotionRecognizer, scores: dict | None) -> str:
    """A plain "not sure" line when the top probability is below the model's confidence threshold, else ""."""
    if not scores:
        return ""
    if isinstance(scores, dict) and "confidences" in scores:  # a Label value, as Gradio passes it back
        scores = {c["label"]: c["confidence"] for c in scores["confidences"]}
    if recognizer.sure(scores):
        return ""
    top = max(scores, key=scores.get)
    return (f"**Not sure.** The most likely emotion, {top}, has only {scores[top]:.0%}: below this model's "
            f"confidence threshold ({recognizer.confidence_threshold:.0%}). All {len(scores)} are shown above.")


def live_step(recognizer: ser.EmotionRecognizer, chunk, buffer):
    """Add one microphone chunk to the rolling window and predict from the last window of audio.

    Args:
        recognizer: the loaded model.
        chunk: `(rate, samples)` from the streaming microphone: int16, `(n,)` or `(n, channels)`.
        buffer: the previous `(rate, samples)` window, or None.

    Returns:
        `(scores or None, status text, new buffer)`.
    """
    if chunk is None:
        return None, "Waiting for the microphone…", buffer
    rate, samples = chunk
    samples = np.asarray(samples)
    if buffer is not None and buffer[0] == rate and buffer[1].shape[1:] == samples.shape[1:]:
        samples = np.concatenate([buffer[1], samples])
    samples = samples[-int(recognizer.config.window_seconds * rate):]
    buffer = (rate, samples)
    seconds = len(samples) / rate
    try:
        scores = recognizer.predict(samples, rate)
    except ser.NoSpeechError:
        return None, f"Listening… no speech in the last {seconds:.1f} s.", buffer
    except ser.AudioError as error:
        return None, f"Cannot use the microphone audio: {error}", buffer
    doubt = "Not sure. " if not recognizer.sure(scores) else ""
    return scores, f"{doubt}From the last {seconds:.1f} s of speech.", buffer


def _model_card(recognizer: ser.EmotionRecognizer) -> tuple[str, str | None]:
    """A markdown line naming the model with a link to its card, and the card's text when it is local."""
    source = str(recognizer.model.name_or_path)
    folder = Path(source)
    if folder.is_dir():
        default = folder.resolve() == Path(ser.DEFAULT_MODEL).resolve()
        name = "the embedded checkpoint" if default else f"`{source}`"
        places = [folder / "README.md", folder / "model_card.md"] + ([ROOT / "model_card.md"] if default else [])
        card = next((p for p in places if p.is_file()), None)
        if card is None:
            return f"Model: {name}.", None
        text = card.read_text(encoding="utf-8")
        text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)  # YAML front matter is for the Hub
        text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # figures are relative files the page cannot show
        return f"Model: {name}; its model card is below.", text
    return f"Model: [`{source}`](https://huggingface.co/{source}) (model card on the Hugging Face Hub).", None


def build_demo(recognizer: ser.EmotionRecognizer, max_seconds: float = 600) -> gr.Blocks:
    """The page: a record-or-upload tab with examples and timeline, and a live microphone tab.

    Args:
        recognizer: the loaded model.
        max_seconds: the longest recording accepted (the library itself has no limit).
    """
    labels = recognizer.labels
    model_line, card = _model_card(recognizer)
    examples = [(FIXTURES / f, caption) for f, caption in EXAMPLES if (FIXTURES / f).is_file()]

    def predict(audio: str | None):
        """Emotion probabilities of one speech clip (WAV, FLAC, MP3, OGG, M4A, WebM, ...).

        Returns a Label value: the most likely emotion and the confidence of every emotion."""
        try:
            return analyze(recognizer, audio, max_seconds)
        finally:
            release_free_memory()

    def show_timeline(scores: dict | None, timeline: Timeline | None):
        """The timeline's figure and summary (a hidden plot for a single clip), and "not sure" where it applies."""
        doubt = not_sure_text(recognizer, scores)
        if timeline is None:
            return gr.Plot(value=None, visible=False), doubt
        figure = timeline_figure(timeline, labels, recognizer.config.window_seconds)
        return gr.Plot(value=figure, visible=True), "\n\n".join(filter(None, [doubt, timeline_summary(timeline)]))

    def clear():
        """Empty outputs for a new input."""
        return None, None, gr.Plot(value=None, visible=False), ""

    with gr.Blocks(title="Speech emotion recognition", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# Speech emotion recognition\n"
            f"Record yourself or upload a clip: the model tells which of {len(labels)} emotions "
            f"({', '.join(labels)}) it sounds like, from *how* it is said, not the words.  \n"
            f"**Can and cannot:** it learned from acted speech only: {learned_from(recognizer.model.config.to_dict())}. "
            "It does best on clear, expressive speech; expect less on spontaneous talk, other languages, noise or "
            "phone audio, and it says \"not sure\" when its top probability is low. Do not use it to make "
            "decisions about people.  \n"
            f"{model_line}"
        )
        with gr.Tab("Record or upload"):
            with gr.Row():
                with gr.Column():
                    audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech")
                    gr.Examples(examples=[[str(path)] for path, _ in examples], inputs=audio,
                                example_labels=[caption for _, caption in examples], label="Examples")
                    gr.Markdown("Examples: RAVDESS, Livingstone & Russo 2018 "
                                "([doi:10.1371/journal.pone.0196391](https://doi.org/10.1371/journal.pone.0196391)), "
                                "[CC BY-NC-SA 4.0](https://creativecommons.org/licenses/by-nc-sa/4.0/).")
                with gr.Column():
                    label = gr.Label(num_top_classes=len(labels), label="Emotion")
                    summary = gr.Markdown()
            plot = gr.Plot(label="Emotion timeline", visible=False, format="png")
            timeline = gr.State()
        with gr.Tab("Live"):
            gr.Markdown(f"Speak into the microphone: the emotion of the last "
                        f"{recognizer.config.window_seconds:g} s updates every {LIVE_EVERY:g} s.")
            with gr.Row():
                mic = gr.Audio(sources=["microphone"], type="numpy", streaming=True, label="Microphone")
                with gr.Column():
                    live_label = gr.Label(num_top_classes=len(labels), label="Emotion now")
                    live_status = gr.Markdown()
            live_buffer = gr.State()
        if card:
            with gr.Accordion("Model card", open=False):
                gr.Markdown(card)

        # Clear the old result first, so a failed prediction never leaves the previous clip's emotion up.
        audio.change(clear, None, [label, timeline, plot, summary], queue=False, api_visibility="private").then(
            predict, audio, [label, timeline], api_name="predict", show_progress_on=label,
        ).success(show_timeline, [label, timeline], [plot, summary], api_visibility="private")

        mic.start_recording(lambda: (None, None, LIVE_STARTED), None, [live_buffer, live_label, live_status],
                            queue=False, api_visibility="private")
        mic.stream(lambda chunk, buffer: live_step(recognizer, chunk, buffer), [mic, live_buffer],
                   [live_label, live_status, live_buffer], stream_every=LIVE_EVERY, time_limit=int(max_seconds),
                   show_progress="hidden", api_visibility="private")
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def load_recognizer(model: str) -> ser.EmotionRecognizer:
    """The recognizer for `model`, or `SystemExit` with one line that says what failed and what to do."""
    model = os.path.expanduser(model)
    try:
        return ser.EmotionRecognizer(model)
    except ser.ModelLoadError as error:
        reason = str(error).splitlines()[0]
        if Path(model).exists() or model.startswith((".", "/")) or model.count("/") > 1:
            hint = "pass a checkpoint folder written by save_pretrained, or a Hub id USER/NAME"
        else:
            hint = ("check the Hub id and your network connection (the first run downloads the model; later runs "
                    "use the cache), or pass a local checkpoint folder with --model DIR")
        raise SystemExit(f"error: {reason} -- {hint}") from None


@functools.cache
def _glibc():
    """The C library where malloc is glibc's (Linux), else None (macOS, Windows, musl): nothing to tune there."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas. Gradio serves each request on a short-lived worker thread; with glibc's
    default of one arena per thread (up to 8 per core) the freed memory stays spread over many arenas,
    and the server's memory grew by about 110 MB over 1000 requests in `bench/load_test.py`."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-8, arenas)  # -8 is M_ARENA_MAX


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system after a request. glibc returns only the top of the main
    arena by itself; the free pages left inside the arenas by decoding and the model's buffers otherwise stay
    resident, and the server grew by 62 MB over 1000 requests in `bench/load_test.py` without this (44 MB
    with it), and latency stayed within the spread between runs."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    limit_malloc_arenas()
    recognizer = load_recognizer(args.model)
    demo = build_demo(recognizer, args.max_seconds)
    # server_name None: Gradio's default, 127.0.0.1 unless GRADIO_SERVER_NAME says otherwise (as on Spaces).
    demo.launch(server_port=args.port, max_file_size=MAX_FILE_SIZE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
