"""Prediction: one clip, a long recording as a timeline, and batches."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForAudioClassification

from .audio import AudioError, NoSpeechError, load_audio, stream_audio
from .vad import (FRAME_SECONDS, MIN_SPEECH_SECONDS, THRESHOLD, SpeechStream, check_speech, frames_for, is_silent,
                  require_speech)

DEFAULT_MODEL = str(Path(__file__).parent / "default_model")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

# Clips of up to this many model windows (RAVDESS: 3-5 s) are scored whole, like in training.
CLIP_WINDOWS = 2


class ModelLoadError(RuntimeError):
    """A checkpoint that cannot be loaded; the message names the folder or file and the cause."""


def load_model(model: str = DEFAULT_MODEL, trust_remote_code: bool = False):
    """Load a checkpoint folder or Hub id as an eval-mode model, turning failures into `ModelLoadError`.

    Only safetensors weights are loaded, never pickle files (unpickling can run arbitrary code).

    Args:
        model: a folder written by `save_pretrained`, or a Hub id.
        trust_remote_code: let transformers run the code files of a checkpoint whose model type this
            package does not know. Off unless the caller turns it on for a model they chose.

    Raises:
        ModelLoadError: with a one-line message naming the missing or broken file.
    """
    import ser  # noqa: F401  (registers the Auto classes)

    folder = Path(model)
    if folder.is_dir():
        _check_checkpoint(folder)
    elif folder.exists() or str(model).startswith((".", "/", "~")) or str(model).count("/") > 1:
        raise ModelLoadError(f"cannot load the model from {model}: no such checkpoint folder")
    try:
        loaded, info = AutoModelForAudioClassification.from_pretrained(
            model, trust_remote_code=trust_remote_code, use_safetensors=True, output_loading_info=True)
    except Exception as error:
        reason = _first_line(error)
        if "custom code" in str(error) or "trust_remote_code" in str(error):
            reason = ("it is not a model this package knows, and loading it would run code files that came with it; "
                      "pass trust_remote_code=True only for a checkpoint whose code you trust")
        raise ModelLoadError(f"cannot load the model from {model}: {reason}") from error
    broken = {kind: info.get(kind) for kind in ("missing_keys", "mismatched_keys") if info.get(kind)}
    if broken:
        detail = "; ".join(f"{kind.replace('_', ' ')}: {', '.join(map(str, list(keys)[:3]))}"
                           for kind, keys in broken.items())
        raise ModelLoadError(f"cannot load the model from {model}: its weights do not fit its config.json ({detail})")
    return loaded.eval()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _check_checkpoint(folder: Path) -> None:
    """Check a local checkpoint's files before transformers reads them, so that a broken one fails with
    a message naming the file (transformers would say less, or load random weights with a warning)."""
    from safetensors import safe_open

    fail = f"cannot load the model from {folder}: "
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelLoadError(fail + f"{config_file} is missing (a checkpoint folder written by save_pretrained "
                             "holds config.json and model.safetensors)")
    try:
        config = json.loads(config_file.read_text())
        assert isinstance(config, dict), "not a JSON object"
    except (ValueError, AssertionError, UnicodeDecodeError) as error:
        raise ModelLoadError(fail + f"{config_file} is not a valid config ({_first_line(error)})") from None
    weights = folder / "model.safetensors"
    if not weights.is_file():
        if (folder / "model.safetensors.index.json").is_file():
            return  # sharded weights: transformers checks each shard
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise ModelLoadError(fail + f"{weights} is missing and only pickle weights are there "
                                 f"({', '.join(pickles)}), which are never loaded because unpickling can run "
                                 "arbitrary code; convert them with save_pretrained (it writes safetensors) in an "
                                 "environment you trust")
        raise ModelLoadError(fail + f"{weights} is missing")
    try:
        with safe_open(str(weights), framework="pt") as file:
            shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}
    except Exception as error:
        raise ModelLoadError(fail + f"{weights} is damaged or not a safetensors file ({_first_line(error)})") from None
    from . import LegacySERConfig
    from .configuration_ser import SERConfig

    if config.get("model_type") not in (SERConfig.model_type, LegacySERConfig.model_type):
        return  # another project's model: transformers checks it (see load_model)
    config_class = SERConfig if config["model_type"] == SERConfig.model_type else LegacySERConfig
    try:
        ser_config = config_class.from_pretrained(folder)
    except Exception as error:
        raise ModelLoadError(fail + f"{config_file} is not a valid config ({_first_line(error)})") from None
    from .modeling_ser import SERForAudioClassification

    with torch.device("meta"):  # shapes only, no memory
        expected = {key: tuple(t.shape) for key, t in SERForAudioClassification(ser_config).state_dict().items()}
    missing = [key for key in expected if key not in shapes]
    wrong = [key for key in expected if key in shapes and shapes[key] != expected[key]]
    head = [key for key in wrong if key.startswith("classifier") and expected[key][0] == ser_config.num_labels
            and shapes[key][:1] != expected[key][:1]]
    if head:
        raise ModelLoadError(fail + f"{config_file} lists {ser_config.num_labels} labels but the classifier head in "
                             f"{weights} has {shapes[head[0]][0]} outputs; config.json's id2label must name one "
                             "label per output")
    if wrong:
        raise ModelLoadError(fail + f"{weights} does not fit {config_file}: {wrong[0]} has shape {shapes[wrong[0]]} "
                             f"in the weights but {expected[wrong[0]]} in the config"
                             + (f" ({len(wrong) - 1} more differ)" if len(wrong) > 1 else ""))
    if missing:
        raise ModelLoadError(fail + f"{weights} lacks {len(missing)} of the model's tensors ({', '.join(missing[:3])}"
                             + (", ..." if len(missing) > 3 else "") + ")")


def _available_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device, or a ValueError saying why it cannot be used here."""
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}: {_first_line(error)}") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device {device} is not available here: torch sees {torch.cuda.device_count()} CUDA "
                         "device(s); use device='cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps is not available here (it needs Apple silicon and a torch build with MPS)")
    return device


@dataclass
class Segment:
    """One window of a timeline: `start` and `end` in seconds, `scores` as emotion -> probability."""

    start: float
    end: float
    scores: dict[str, float]

    @property
    def label(self) -> str:
        return max(self.scores, key=self.scores.get)


@dataclass
class Timeline:
    """The scored windows of a recording, the mean of their scores, and the recording's length in seconds."""

    segments: list[Segment] = field(default_factory=list)
    overall: dict[str, float] = field(default_factory=dict)
    duration: float = 0.0


class EmotionRecognizer:
    """Load a model once, then predict emotions from files, bytes or arrays.

    Files are decoded piece by piece (`ser.audio.stream_audio`), so a recording of any length is
    scored in bounded memory.

    Args:
        model: a checkpoint folder or Hub id (default: the checkpoint embedded in this package), or an
            already loaded `SERForAudioClassification`.
        trust_remote_code: passed to `from_pretrained`; only needed for checkpoints of other projects.
        device: where the model runs, as torch names it ("cpu", "cuda", "cuda:1", "mps"). Decoding and
            the speech checks stay on the CPU; only the forward pass moves.
        confidence_threshold: below this top probability, `sure` says the model is not sure (default: the
            checkpoint's `config.confidence_threshold`, chosen on held-out speakers; 0 always answers).

    Raises:
        ValueError: for a device name torch does not know or a device this machine does not have.
    """

    def __init__(self, model=DEFAULT_MODEL, trust_remote_code: bool = False, device: str | torch.device = "cpu",
                 confidence_threshold: float | None = None):
        self.device = _available_device(device)
        self.model = load_model(model, trust_remote_code) if isinstance(model, (str, Path)) else model.eval()
        # Channels-last conv weights spare oneDNN re-laying out weights and activations on every call and let
        # max pooling vectorize: the CNN runs faster on a CPU, with the same results up to float rounding.
        self.model.to(self.device, memory_format=torch.channels_last)
        self.config = self.model.config
        self.sampling_rate = self.config.sampling_rate
        self.labels = [self.config.id2label[i] for i in range(self.config.num_labels)]
        self.confidence_threshold = (getattr(self.config, "confidence_threshold", 0.0)
                                     if confidence_threshold is None else float(confidence_threshold))

    def sure(self, scores: dict[str, float]) -> bool:
        """Whether the top probability of `predict`'s scores reaches `confidence_threshold`."""
        return max(scores.values()) >= self.confidence_threshold

    def load(self, audio, sampling_rate: int | None = None) -> np.ndarray:
        """`ser.load_audio` at the model's rate; `sampling_rate` is that of an array `audio`."""
        return load_audio(audio, self.sampling_rate, source_rate=sampling_rate)

    @torch.inference_mode()
    def probabilities(self, waves: list[np.ndarray]) -> np.ndarray:
        """Class probabilities for already loaded mono waveforms at the model's rate, shape (n, classes).

        The waveforms are zero-padded into one batch with an attention mask, so each scores as it would alone.
        """
        length = max(len(w) for w in waves)
        batch = np.zeros((len(waves), length), dtype=np.float32)
        mask = np.zeros((len(waves), length), dtype=np.int64)
        for row, row_mask, wave in zip(batch, mask, waves):
            row[: len(wave)] = wave
            row_mask[: len(wave)] = 1
        logits = self.model(torch.from_numpy(batch).to(self.device),
                            attention_mask=torch.from_numpy(mask).to(self.device)).logits
        return logits.softmax(-1).float().cpu().numpy()

    def _scores(self, probs: np.ndarray) -> dict[str, float]:
        order = np.argsort(-probs)
        return {self.labels[i]: float(probs[i]) for i in order}

    def _open(self, audio, sampling_rate: int | None) -> tuple[np.ndarray | None, Iterator[np.ndarray] | None]:
        """(wave, None) for a clip, else (None, its pieces): only clips are held whole.

        A clip is up to `CLIP_WINDOWS` windows long: it is given to the model whole, as in training, so the
        model places its window at the speech onset itself; longer audio is scored as a timeline."""
        pieces = stream_audio(audio, self.sampling_rate, source_rate=sampling_rate)
        first = next(pieces)
        second = next(pieces, None)
        if second is None and len(first) <= CLIP_WINDOWS * self.config.window_samples:
            return first, None
        return None, itertools.chain([first] if second is None else [first, second], pieces)

    def predict(self, audio, sampling_rate: int | None = None) -> dict[str, float]:
        """Emotion -> probability, most likely first. Raises `AudioError`, or `NoSpeechError` when the speech
        detector (`ser.vad`) finds less than `MIN_SPEECH_SECONDS` of speech (silence, tones, noise, music).

        Audio longer than `CLIP_WINDOWS` model windows is scored window by window and averaged
        (see `timeline`)."""
        wave, pieces = self._open(audio, sampling_rate)
        if pieces is not None:
            return self._timeline(pieces).overall
        require_speech(wave, self.sampling_rate, MIN_SPEECH_SECONDS)
        return self._scores(self.probabilities([wave])[0])

    def predict_batch(self, audios: list, sampling_rate: int | None = None) -> list[dict[str, float]]:
        """`predict` for many inputs; clips of up to one window share one forward pass.
        Raises on the first unusable input; `predict_many` skips them instead."""
        results = []
        for _, result in self.predict_many(audios, sampling_rate, batch_size=max(1, len(audios))):
            if isinstance(result, Exception):
                raise result
            results.append(result)
        return results

    def _prepare(self, audio, sampling_rate: int | None):
        """One input of `predict_many`, ready to score: (clip, None) after the speech check, (None, pieces)
        for a recording, or (AudioError, None)."""
        try:
            wave, pieces = self._open(audio, sampling_rate)
            if pieces is None:
                require_speech(wave, self.sampling_rate, MIN_SPEECH_SECONDS)
            return wave, pieces
        except AudioError as error:
            return error, None

    def predict_many(self, audios, sampling_rate: int | None = None, batch_size: int = 32, decode_workers: int = 2):
        """Yield `(input, scores)` for each input, or `(input, AudioError)` for one that cannot be used,
        so a long list is never stopped by one bad file. Inputs are scored `batch_size` at a time.

        Decoding takes about as long as the model, so `decode_workers` threads decode the inputs (FFmpeg and
        resampling release the GIL), and the next batch is decoded while the model scores the current one."""
        audios = iter(audios)
        with ThreadPoolExecutor(max(1, decode_workers)) as pool:

            def decode_next():
                chunk = list(itertools.islice(audios, batch_size))
                return chunk, [pool.submit(self._prepare, audio, sampling_rate) for audio in chunk]

            chunk, futures = decode_next()
            while chunk:
                prepared = [future.result() for future in futures]
                next_chunk, futures = decode_next()
                results, short = {}, {}
                for i, (wave, pieces) in enumerate(prepared):
                    if isinstance(wave, AudioError):
                        results[i] = wave
                    elif pieces is not None:
                        try:
                            results[i] = self._timeline(pieces).overall
                        except AudioError as error:
                            results[i] = error
                    else:
                        short[i] = wave
                if short:
                    for i, probs in zip(short, self.probabilities(list(short.values()))):
                        results[i] = self._scores(probs)
                for i, audio in enumerate(chunk):
                    yield audio, results[i]
                chunk = next_chunk

    def timeline(self, audio, sampling_rate: int | None = None, hop_seconds: float | None = None,
                 batch_size: int = 32) -> Timeline:
        """Score a recording window by window (hop: half a window), skipping windows without speech: a window
        is scored when the speech detector (`ser.vad`) finds at least `MIN_SPEECH_SECONDS` of speech in it.

        A file is decoded piece by piece and its windows are scored `batch_size` at a time, so memory
        does not grow with the recording's length. The overall result is the mean of the segments'
        probabilities.

        Args:
            audio: anything `ser.load_audio` takes.
            sampling_rate: the rate of an array `audio`.
            hop_seconds: the step between windows (default: half the model's window).
            batch_size: windows per forward pass.

        Raises:
            AudioError: for unusable audio; `NoSpeechError` when no window holds enough speech.
        """
        return self._timeline(stream_audio(audio, self.sampling_rate, source_rate=sampling_rate),
                              hop_seconds, batch_size)

    def _timeline(self, pieces: Iterable[np.ndarray], hop_seconds: float | None = None,
                  batch_size: int = 32) -> Timeline:
        rate, window = self.sampling_rate, self.config.window_samples
        hop = max(1, int((hop_seconds or self.config.window_seconds / 2) * rate))
        enough = frames_for(MIN_SPEECH_SECONDS)  # speech frames a window needs
        detector = SpeechStream(rate)
        speech = np.zeros(0, bool)  # whether each detector frame from frame `first_frame` on is speech
        first_frame = 0
        buffer, buffer_start, total = np.zeros(0, np.float32), 0, 0  # buffer[0] is sample buffer_start
        next_window = 0  # windows start at next_window * hop
        batch, scored = [], []  # (start, samples) waiting; (start, end, probabilities) done

        def score():
            probs = self.probabilities([samples for _, samples in batch])
            scored.extend((start, start + len(samples), p) for (start, samples), p in zip(batch, probs))
            batch.clear()

        def consider(start: int, samples: np.ndarray):
            # The detector's frames that lie inside the window (all of them are known by now; the detector is
            # causal, so the decision is final).
            low = int(np.ceil(start / rate / FRAME_SECONDS - 1e-9)) - first_frame
            high = int((start + window) / rate / FRAME_SECONDS + 1e-9) - first_frame
            if np.count_nonzero(speech[max(0, low): max(0, high)]) >= enough:
                batch.append((start, samples))
                if len(batch) == batch_size:
                    score()

        for piece in pieces:
            buffer = np.concatenate([buffer, piece])
            total += len(piece)
            speech = np.concatenate([speech, detector.push(piece) >= THRESHOLD])
            while next_window * hop + window <= total:
                start = next_window * hop
                consider(start, buffer[start - buffer_start: start - buffer_start + window].copy())
                next_window += 1
            keep = min(next_window * hop, total)  # a hop longer than a window skips audio not yet read
            buffer, buffer_start = buffer[keep - buffer_start:], keep
            drop = max(0, int(keep / rate / FRAME_SECONDS) - first_frame - 1)  # frames no window needs any more
            speech, first_frame = speech[drop:], first_frame + drop
        speech = np.concatenate([speech, detector.finish() >= THRESHOLD])
        # The last windows may run past the end (by less than a hop); the model pads them with silence.
        while next_window * hop < max(1, total - window + hop):
            start = next_window * hop
            consider(start, buffer[start - buffer_start:].copy())
            next_window += 1
        if batch:
            score()

        check_speech(total / rate, detector.speech_frames * FRAME_SECONDS, MIN_SPEECH_SECONDS,
                     is_silent(detector.peak))
        segments = [Segment(start / rate, min(total, start + window) / rate, self._scores(p))
                    for start, _, p in scored]
        if not segments:
            raise NoSpeechError("no window of the recording holds enough speech to judge")
        mean = np.mean([[s.scores[label] for label in self.labels] for s in segments], axis=0)
        return Timeline(segments, self._scores(mean), total / rate)
