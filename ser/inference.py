"""Prediction: one clip, a long recording as a timeline, and batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForAudioClassification

from .audio import AudioError, NoSpeechError, load_audio, require_speech, speech_frames

DEFAULT_MODEL = str(Path(__file__).parent / "default_model")


class ModelLoadError(RuntimeError):
    """A checkpoint that cannot be loaded; the message names the folder or file and the cause."""


def load_model(model: str = DEFAULT_MODEL, trust_remote_code: bool = False):
    """Load a checkpoint folder or Hub id as an eval-mode model, turning failures into `ModelLoadError`."""
    import ser  # noqa: F401  (registers the Auto classes)

    try:
        loaded = AutoModelForAudioClassification.from_pretrained(model, trust_remote_code=trust_remote_code)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelLoadError(f"cannot load the model from {model}: {first}") from error
    return loaded.eval()


@dataclass
class Segment:
    start: float
    end: float
    scores: dict[str, float]

    @property
    def label(self) -> str:
        return max(self.scores, key=self.scores.get)


@dataclass
class Timeline:
    segments: list[Segment] = field(default_factory=list)
    overall: dict[str, float] = field(default_factory=dict)


class EmotionRecognizer:
    """Load a model once, then predict emotions from files, bytes or arrays.

    Args:
        model: a checkpoint folder or Hub id (default: the checkpoint embedded in this package), or an
            already loaded `SERForAudioClassification`.
        trust_remote_code: passed to `from_pretrained`; only needed for checkpoints of other projects.
    """

    def __init__(self, model=DEFAULT_MODEL, trust_remote_code: bool = False):
        self.model = load_model(model, trust_remote_code) if isinstance(model, (str, Path)) else model.eval()
        self.config = self.model.config
        self.sampling_rate = self.config.sampling_rate
        self.labels = [self.config.id2label[i] for i in range(self.config.num_labels)]

    def load(self, audio, sampling_rate: int | None = None) -> np.ndarray:
        return load_audio(audio, self.sampling_rate, source_rate=sampling_rate)

    @torch.inference_mode()
    def probabilities(self, waves: list[np.ndarray]) -> np.ndarray:
        """Class probabilities for already loaded mono waveforms at the model's rate, shape (n, classes)."""
        length = max(len(w) for w in waves)
        batch = np.zeros((len(waves), length), dtype=np.float32)
        for row, wave in zip(batch, waves):
            row[: len(wave)] = wave
        return self.model(torch.from_numpy(batch)).logits.softmax(-1).numpy()

    def _scores(self, probs: np.ndarray) -> dict[str, float]:
        order = np.argsort(-probs)
        return {self.labels[i]: float(probs[i]) for i in order}

    def predict(self, audio, sampling_rate: int | None = None) -> dict[str, float]:
        """Emotion -> probability, most likely first. Raises `AudioError` / `NoSpeechError`.

        Audio longer than the model's window is scored segment by segment and averaged
        (see `timeline`)."""
        wave = self.load(audio, sampling_rate)
        require_speech(wave, self.sampling_rate)
        if len(wave) <= self.config.window_samples:
            return self._scores(self.probabilities([wave])[0])
        return self.timeline(wave, self.sampling_rate).overall

    def predict_batch(self, audios: list, sampling_rate: int | None = None) -> list[dict[str, float]]:
        """`predict` for many inputs; clips of up to one window share one forward pass.
        Raises on the first unusable input; `predict_many` skips them instead."""
        results = []
        for _, result in self.predict_many(audios, sampling_rate, batch_size=max(1, len(audios))):
            if isinstance(result, Exception):
                raise result
            results.append(result)
        return results

    def predict_many(self, audios, sampling_rate: int | None = None, batch_size: int = 32):
        """Yield `(input, scores)` for each input, or `(input, AudioError)` for one that cannot be used,
        so a long list is never stopped by one bad file. Inputs are decoded and scored `batch_size` at a time."""
        audios = iter(audios)
        while True:
            chunk = [a for _, a in zip(range(batch_size), audios)]
            if not chunk:
                return
            results, short = {}, {}
            for i, audio in enumerate(chunk):
                try:
                    wave = self.load(audio, sampling_rate)
                    require_speech(wave, self.sampling_rate)
                    if len(wave) <= self.config.window_samples:
                        short[i] = wave
                    else:
                        results[i] = self.timeline(wave, self.sampling_rate).overall
                except AudioError as error:
                    results[i] = error
            if short:
                for i, probs in zip(short, self.probabilities(list(short.values()))):
                    results[i] = self._scores(probs)
            for i, audio in enumerate(chunk):
                yield audio, results[i]

    def timeline(self, audio, sampling_rate: int | None = None, hop_seconds: float | None = None,
                 batch_size: int = 32) -> Timeline:
        """Score a recording window by window (hop: half a window), skipping windows without speech.

        The overall result is the mean of the segments' probabilities. Raises `NoSpeechError` when no
        window holds speech.
        """
        wave = self.load(audio, sampling_rate)
        require_speech(wave, self.sampling_rate)
        window = self.config.window_samples
        hop = int((hop_seconds or self.config.window_seconds / 2) * self.sampling_rate)
        starts = range(0, max(1, len(wave) - window + hop), hop)
        speech = speech_frames(wave, self.sampling_rate)
        frame = int(0.025 * self.sampling_rate)
        chosen = []
        for start in starts:
            frames = speech[start // frame: (start + window) // frame]
            if frames.sum() * 0.025 >= 0.2:
                chosen.append(start)
        if not chosen:
            raise NoSpeechError("no window of the recording holds enough speech to judge")
        segments = []
        for i in range(0, len(chosen), batch_size):
            group = chosen[i: i + batch_size]
            probs = self.probabilities([wave[s: s + window] for s in group])
            for start, p in zip(group, probs):
                end = min(len(wave), start + window) / self.sampling_rate
                segments.append(Segment(start / self.sampling_rate, end, self._scores(p)))
        mean = np.mean([[s.scores[label] for label in self.labels] for s in segments], axis=0)
        return Timeline(segments, self._scores(mean))
