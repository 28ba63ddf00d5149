"""The one place where audio of any kind becomes mono float32 at the model's rate.

The CLI, the pipeline helpers, batch prediction and the app all call `load_audio`. Anything it cannot
turn into a usable waveform raises `AudioError` (a `ValueError`) with a message that says what was
wrong and what is accepted.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np
import torch
import torchaudio

ACCEPTED = "an audio file (WAV, FLAC, MP3, OGG, M4A/MP4, WebM), its bytes, or a numeric array with its sampling rate"
MAX_CHANNELS = 64


class AudioError(ValueError):
    """Input that cannot be used as speech audio; the message says why and what is accepted."""


class NoSpeechError(AudioError):
    """The audio decodes fine but holds no speech (silence) or too little of it to judge."""


def load_audio(source, sampling_rate: int = 16000, source_rate: int | None = None) -> np.ndarray:
    """Decode, downmix and resample `source` to mono float32 at `sampling_rate`.

    Args:
        source: a path (str or `Path`), the bytes of an audio file, a 1-D or 2-D array / tensor
            (2-D: channels first or last; the shorter axis is taken as channels), or a dict with
            `"raw"` or `"array"` and `"sampling_rate"` (the form `datasets` and `transformers` use).
        sampling_rate: the rate to return.
        source_rate: the rate of an array `source`; required for arrays.

    Raises:
        AudioError: for anything that is not decodable, finite audio.
    """
    if isinstance(source, dict):
        if "sampling_rate" not in source or not ("raw" in source or "array" in source):
            raise AudioError('an audio dict needs "raw" (or "array") and "sampling_rate" keys')
        array = source["raw"] if "raw" in source else source["array"]
        return load_audio(array, sampling_rate, source_rate=source["sampling_rate"])
    if isinstance(source, (str, os.PathLike)):
        return _decode_file(Path(source), sampling_rate)
    if isinstance(source, (bytes, bytearray)):
        return _decode(bytes(source), sampling_rate, what="the audio bytes")
    if isinstance(source, (np.ndarray, torch.Tensor, list, tuple)):
        if source_rate is None:
            raise AudioError("an array needs its sampling rate (source_rate=...)")
        return _from_array(source, int(source_rate), sampling_rate)
    raise AudioError(f"cannot read audio from a {type(source).__name__}; expected {ACCEPTED}")


def _decode_file(path: Path, sampling_rate: int) -> np.ndarray:
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    return _decode(str(path), sampling_rate, what=str(path))


def audio_duration(path) -> float | None:
    """Length in seconds that an audio file's header states, read without decoding the samples, so a
    caller with a length limit can refuse a long file before paying for it.

    Args:
        path: an audio file (str or `Path`).

    Returns:
        The duration, or None when the header does not state it (e.g. WebM from a browser).

    Raises:
        AudioError: for a missing, empty or unreadable file, as `load_audio` would.
    """
    from torchcodec.decoders import AudioDecoder

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    try:
        return AudioDecoder(str(path)).metadata.duration_seconds_from_header
    except Exception as error:
        reason = _reason(error)
        raise AudioError(f"{path}: not a readable audio file ({reason}); expected {ACCEPTED}") from None


def _decode(source, sampling_rate: int, what: str) -> np.ndarray:
    from torchcodec.decoders import AudioDecoder

    try:
        decoder = AudioDecoder(source, sample_rate=sampling_rate, num_channels=1)
        samples = decoder.get_all_samples().data
    except Exception as error:  # torchcodec raises RuntimeError/ValueError with FFmpeg's words
        reason = _reason(error)
        raise AudioError(f"{what}: not a readable audio file ({reason}); expected {ACCEPTED}") from None
    return _finish(samples[0].numpy(), what)


def _reason(error: Exception) -> str:
    """The first line of a decoder error, without torchcodec's source location ("SingleStreamDecoder, x.cpp:41, ")."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return re.sub(r"^\w+, \S+:\d+, ", "", text)


def _from_array(array, source_rate: int, sampling_rate: int) -> np.ndarray:
    if source_rate <= 0:
        raise AudioError(f"the sampling rate must be positive, got {source_rate}")
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.dtype.kind not in "iuf":
        raise AudioError(f"audio samples must be numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        channel_axis = 0 if array.shape[0] <= array.shape[1] else 1
        if array.shape[channel_axis] > MAX_CHANNELS:
            raise AudioError(f"an array of shape {array.shape} has too many channels for audio")
        array = _to_float(array).mean(axis=channel_axis)
    elif array.ndim == 1:
        array = _to_float(array)
    else:
        raise AudioError(f"audio must be 1-D (samples) or 2-D (channels x samples), got shape {array.shape}")
    if source_rate != sampling_rate and array.size:
        array = _resampler(source_rate, sampling_rate)(torch.from_numpy(np.ascontiguousarray(array))).numpy()
    return _finish(array, "the audio array")


def _to_float(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    if array.dtype.kind == "u":
        half = 2.0 ** (8 * array.dtype.itemsize - 1)
        return ((array.astype(np.float64) - half) / half).astype(np.float32)
    return (array.astype(np.float64) / 2.0 ** (8 * array.dtype.itemsize - 1)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _resampler(source_rate: int, sampling_rate: int) -> torchaudio.transforms.Resample:
    # Building the resampling kernel costs more than applying it to a short clip: build it once per pair.
    return torchaudio.transforms.Resample(source_rate, sampling_rate)


def _finish(wave: np.ndarray, what: str) -> np.ndarray:
    if wave.size == 0:
        raise AudioError(f"{what}: holds no audio samples")
    if not np.isfinite(wave).all():
        raise AudioError(f"{what}: contains NaN or infinite samples")
    return np.ascontiguousarray(wave, dtype=np.float32)


def speech_frames(wave: np.ndarray, sampling_rate: int, frame_seconds: float = 0.025,
                  floor_db: float = -55.0, range_db: float = 40.0) -> np.ndarray:
    """Boolean mask of frames that carry speech-level energy (a simple energy detector).

    A frame counts when it is louder than `floor_db` dBFS and within `range_db` of the loudest frame.
    """
    frame = max(1, int(frame_seconds * sampling_rate))
    count = len(wave) // frame
    if count == 0:
        return np.zeros(0, dtype=bool)
    centered = wave[: count * frame].reshape(count, frame)
    centered = centered - centered.mean(axis=1, keepdims=True)  # a DC offset is not speech
    level = 10 * np.log10(np.mean(centered.astype(np.float64) ** 2, axis=1) + 1e-12)
    return (level > floor_db) & (level > level.max() - range_db)


def require_speech(wave: np.ndarray, sampling_rate: int, min_speech_seconds: float = 0.2) -> None:
    """Raise `NoSpeechError` for silence or for less than `min_speech_seconds` of speech."""
    duration = len(wave) / sampling_rate
    if duration < min_speech_seconds:
        raise NoSpeechError(
            f"the clip is {duration * 1000:.0f} ms long; at least {min_speech_seconds * 1000:.0f} ms of speech is needed"
        )
    frames = speech_frames(wave, sampling_rate)
    speech = frames.sum() * 0.025
    if speech == 0:
        raise NoSpeechError("no speech found: the audio is silent")
    if speech < min_speech_seconds:
        raise NoSpeechError(
            f"only {speech * 1000:.0f} ms of speech found; at least {min_speech_seconds * 1000:.0f} ms is needed"
        )
