"""Voice-activity detection: whether, and where, a recording holds speech.

The library decides "no speech here" (`NoSpeechError`), which windows of a timeline to score and when the app's
Live tab answers with this detector: Silero VAD (the `silero-vad` package, MIT), a small recurrent network
trained on speech and on many kinds of non-speech (music, noise, tones). Its packaged ONNX model runs with
onnxruntime on one thread, fully offline (the weights ship inside the wheel). It scores frames of 32 ms at
16 kHz with a speech probability, carrying its state from frame to frame, so a long recording can be fed piece by
piece (`SpeechStream`) in bounded memory: the frames are those of the whole, each piece scaled to its own level.

The emotion model itself is unchanged: its front end still places its 3 s window by energy
(`ser.modeling_ser.speech_frames`). Only the decision whether there is speech, and where, is made here.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path

import numpy as np

from .audio import NoSpeechError, _resampler

RATE = 16000  # the detector's rate
FRAME = 512  # samples a frame at RATE: 32 ms
CONTEXT = 64  # samples of the previous frame that the model sees with each frame
FRAME_SECONDS = FRAME / RATE
# A frame is speech when its probability reaches this: Silero's own default.
THRESHOLD = 0.5
# The least speech to judge, in seconds, for a clip and for each window of a timeline.
MIN_SPEECH_SECONDS = 0.2
# Below this peak level (dBFS, after removing the mean), audio is silent: no speech is looked for, and a recording
# without speech is called silent.
SILENCE_DB = -70.0
# Each piece is scaled to this peak before detection. The emotion model is level-independent, and so is the
# detector this way: quiet speech (RAVDESS's quietest clips peak near -32 dBFS; the detector alone misses speech
# that peaks below about -50 dBFS) counts as speech.
PEAK = 0.5
# Frames per onnxruntime call: when looking for the first speech, few, to stop early; when scanning, more (the
# call's overhead is then negligible, and memory stays small).
BLOCK_FRAMES, SCAN_BLOCK_FRAMES = 8, 256
# `require_speech` first looks from this long before a clip's first loud sample.
LEAD_SECONDS = 0.1
MODEL_FILE = "silero_vad_16k_sequence.onnx"
_lock = threading.Lock()


def model_path() -> Path:
    """Silero's packaged sequence model (one onnxruntime call scores many frames, carrying the state).

    The file is located without importing the `silero_vad` package, whose import sets torch's thread count to 1
    for the whole process."""
    spec = importlib.util.find_spec("silero_vad")
    path = Path(spec.origin).parent / "data" / MODEL_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise RuntimeError("the speech detector needs the silero-vad package (pip install silero-vad); "
                           f"its model {MODEL_FILE} was not found")
    return path


@functools.cache
def _session():
    path = model_path()
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def session():
    """The shared onnxruntime session (loaded on first use; `run` is safe to call from several threads)."""
    with _lock:
        return _session()


class SpeechStream:
    """Speech probabilities of a recording fed piece by piece: `push` each piece, then `finish`.

    Frame k covers seconds [k * FRAME_SECONDS, (k + 1) * FRAME_SECONDS) of the recording. Each piece has its
    mean removed (a DC offset is not speech) and is scaled to a peak of `PEAK`, unless it is silent (peak below
    `SILENCE_DB`); audio at another rate than 16 kHz is resampled.

    Args:
        sampling_rate: the rate of the pieces.
    """

    def __init__(self, sampling_rate: int = RATE):
        self.sampling_rate = sampling_rate
        self.frames = 0  # frames scored so far
        self.speech_frames = 0  # of them, frames with a probability >= THRESHOLD
        self.peak = 0.0  # largest absolute sample, each piece's mean removed
        self._pending = np.zeros(0, np.float32)  # samples at RATE not yet in a whole frame
        self._context = np.zeros(CONTEXT, np.float32)
        self._state = (np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32))

    def push(self, piece: np.ndarray, stop_at: int | None = None) -> np.ndarray:
        """Speech probabilities of the frames that `piece` completes.

        Args:
            piece: mono samples at `sampling_rate`.
            stop_at: stop scoring once this many speech frames are counted (the rest of `piece` is dropped,
                so the stream must not be fed further): enough to say there is speech, at a fraction of the cost.
        """
        piece = np.asarray(piece, dtype=np.float32)
        silent = True
        if piece.size:
            piece = piece - piece.mean(dtype=np.float64).astype(np.float32)
            peak = float(np.abs(piece).max())
            self.peak = max(self.peak, peak)
            silent = is_silent(peak)
            piece = np.zeros_like(piece) if silent else piece * np.float32(PEAK / peak)
            if self.sampling_rate != RATE:
                import torch

                piece = _resampler(self.sampling_rate, RATE)(torch.from_numpy(np.ascontiguousarray(piece))).numpy()
        carried = bool(np.any(self._pending))
        samples = np.concatenate([self._pending, piece]) if self._pending.size else piece
        whole = len(samples) // FRAME
        frames = samples[: whole * FRAME].reshape(whole, FRAME)
        self._pending = samples[whole * FRAME:].copy()
        if not silent:
            return self._score(frames, stop_at)
        # Silence: no speech to look for, and the network's time is saved. Only a frame that still holds samples
        # of the previous piece is scored; after the silence the detector starts afresh, as at the beginning.
        head = self._score(frames[:1], stop_at) if carried and whole else np.zeros(0, np.float32)
        rest = whole - len(head)
        if rest:
            self.frames += rest
            self._context = np.zeros(CONTEXT, np.float32)
            self._state = (np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32))
        return np.concatenate([head, np.zeros(rest, np.float32)])

    def finish(self) -> np.ndarray:
        """The probability of the last, partial frame (zero-padded), if any."""
        if not self._pending.size:
            return np.zeros(0, np.float32)
        frame = np.zeros((1, FRAME), np.float32)
        frame[0, : self._pending.size] = self._pending
        self._pending = np.zeros(0, np.float32)
        return self._score(frame, None)

    def _score(self, frames: np.ndarray, stop_at: int | None) -> np.ndarray:
        out = []
        size = BLOCK_FRAMES if stop_at is not None else SCAN_BLOCK_FRAMES
        for first in range(0, len(frames), size):
            block = frames[first: first + size]
            contexts = np.empty((len(block), CONTEXT), np.float32)
            contexts[0] = self._context
            contexts[1:] = block[:-1, -CONTEXT:]
            self._context = block[-1, -CONTEXT:].copy()
            probabilities, hidden, cell = session().run(
                ["speech_probs", "hn", "cn"],
                {"input": np.concatenate([contexts, block], axis=1), "h": self._state[0], "c": self._state[1]})
            self._state = (hidden, cell)
            probabilities = probabilities.reshape(-1)
            self.frames += len(probabilities)
            self.speech_frames += int(np.count_nonzero(probabilities >= THRESHOLD))
            out.append(probabilities)
            if stop_at is not None and self.speech_frames >= stop_at:
                break
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def speech_probabilities(wave: np.ndarray, sampling_rate: int = RATE) -> np.ndarray:
    """Speech probability of each 32 ms frame of `wave` (the last one zero-padded)."""
    stream = SpeechStream(sampling_rate)
    return np.concatenate([stream.push(wave), stream.finish()])


def frames_for(seconds: float) -> int:
    """The least number of speech frames that stands for `seconds` of speech."""
    return max(1, int(np.ceil(seconds / FRAME_SECONDS - 1e-9)))


def check_speech(duration: float, speech_seconds: float, min_speech_seconds: float = MIN_SPEECH_SECONDS,
                 silent: bool = False) -> None:
    """Raise `NoSpeechError` unless a recording of `duration` seconds holds `min_speech_seconds` of speech.

    Args:
        duration: the recording's length in seconds.
        speech_seconds: how much of it the speech detector marked as speech.
        min_speech_seconds: the least amount of speech to judge.
        silent: whether the recording is silent (then the message says so).
    """
    needed = f"at least {min_speech_seconds * 1000:.0f} ms of speech is needed"
    if duration < min_speech_seconds:
        raise NoSpeechError(f"the clip is {duration * 1000:.0f} ms long; {needed}")
    if speech_seconds == 0:
        raise NoSpeechError("no speech found: the audio is silent" if silent else
                            "no speech found: the audio holds sound, but no voice")
    if speech_seconds < min_speech_seconds:
        raise NoSpeechError(f"only {speech_seconds * 1000:.0f} ms of speech found; {needed}")


def is_silent(peak: float) -> bool:
    """Whether a peak level (absolute sample value, mean removed) is silence."""
    return peak < 10 ** (SILENCE_DB / 20)


def require_speech(wave: np.ndarray, sampling_rate: int, min_speech_seconds: float = MIN_SPEECH_SECONDS) -> None:
    """Raise `NoSpeechError` unless the detector finds `min_speech_seconds` of speech in `wave`.

    The detector stops as soon as it has found enough. It first looks from shortly before the first loud sample
    (within 20 dB of the peak) on, where speech starts in most clips, so the usual leading silence costs
    nothing; only when that finds too little does it scan the whole clip, whose result then decides."""
    duration = len(wave) / sampling_rate
    if duration < min_speech_seconds:
        check_speech(duration, 0.0, min_speech_seconds)
    wave = np.asarray(wave, dtype=np.float32)
    enough = frames_for(min_speech_seconds)
    level = np.abs(wave - wave.mean(dtype=np.float64))
    loud = int(np.argmax(level >= 0.1 * level.max())) if level.size else 0
    start = max(0, loud - int(LEAD_SECONDS * sampling_rate))
    if start > 0:
        stream = SpeechStream(sampling_rate)
        stream.push(wave[start:], stop_at=enough)
        if stream.speech_frames >= enough:
            return
    stream = SpeechStream(sampling_rate)
    stream.push(wave, stop_at=enough)
    if stream.speech_frames < enough:
        stream.finish()
    check_speech(duration, stream.speech_frames * FRAME_SECONDS, min_speech_seconds, is_silent(stream.peak))
