"""The one place where audio of any kind becomes mono float32 at the model's rate.

The CLI, the pipeline helpers, batch prediction and the app all call `load_audio` (or `stream_audio`
for long files). Anything that cannot be turned into a usable waveform raises `AudioError` (a
`ValueError`) with a message that says what was wrong and what is accepted; audio without a single sample
raises its subclass `NoSpeechError`, which `ser.vad` also raises for audio without speech.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torchaudio

from .modeling_ser import frame_power, power_db, remove_offset
from .modeling_ser import speech_frames as _speech_frames

ACCEPTED = "an audio file (WAV, FLAC, MP3, OGG, M4A/MP4, WebM), its bytes, or a numeric array with its sampling rate"
MAX_CHANNELS = 64
MIN_RATE, MAX_RATE = 1000, 768000
# The model's analysis frame (n_fft and hop_length at 16 kHz) and its speech-frame range (trim_silence_db).
FRAME_SECONDS, HOP_SECONDS, RANGE_DB = 0.025, 0.020, 35.0
# A recording whose loudest frame is below this is silent (for the energy-based frames below).
FLOOR_DB = -70.0
# Above this many filter taps, torchaudio's exact resampling kernel (rates with a small common divisor,
# e.g. 44101 -> 16000) would take gigabytes; such ratios are approximated to well under 1 ppm instead.
MAX_KERNEL_TAPS = 2_000_000
log = logging.getLogger("ser")


class AudioError(ValueError):
    """Input that cannot be used as speech audio; the message says why and what is accepted."""


class NoSpeechError(AudioError):
    """The audio decodes fine but holds nothing to judge: no samples, or too little speech (`ser.vad`)."""


def load_audio(source, sampling_rate: int = 16000, source_rate: int | None = None) -> np.ndarray:
    """Decode, downmix and resample `source` to mono float32 at `sampling_rate`.

    Args:
        source: a path (str or `Path`), the bytes of an audio file, a 1-D or 2-D array / tensor
            (2-D: channels first or last; the shorter axis is taken as channels), or a dict with
            `"raw"` or `"array"` and `"sampling_rate"` (the form `datasets` and `transformers` use).
            Integer arrays are scaled from their type's full range; float arrays are expected in
            [-1, 1], and one with a larger peak (e.g. int16 values stored as floats) is scaled down to
            a peak of 1. Decoded files are clipped to [-1, 1], as a player would.
        sampling_rate: the rate to return.
        source_rate: the rate of an array `source` (1 kHz to 768 kHz); required for arrays.

    Raises:
        AudioError: for anything that is not decodable, finite audio.
        NoSpeechError: for audio without a single sample at `sampling_rate`.
    """
    if isinstance(source, dict):
        if "sampling_rate" not in source or not ("raw" in source or "array" in source):
            raise AudioError('an audio dict needs "raw" (or "array") and "sampling_rate" keys')
        array = source["raw"] if "raw" in source else source["array"]
        return load_audio(array, sampling_rate, source_rate=source["sampling_rate"])
    if isinstance(source, (str, os.PathLike)):
        path = _check_file(source)
        return _decode(str(path), sampling_rate, what=str(path))
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise AudioError(f"the audio bytes are empty; expected {ACCEPTED}")
        return _decode(bytes(source), sampling_rate, what="the audio bytes")
    if isinstance(source, (np.ndarray, torch.Tensor, list, tuple)):
        if source_rate is None:
            raise AudioError("an array needs its sampling rate (source_rate=...)")
        return _from_array(source, source_rate, sampling_rate)
    raise AudioError(f"cannot read audio from a {type(source).__name__}; expected {ACCEPTED}")


def stream_audio(source, sampling_rate: int = 16000, source_rate: int | None = None,
                 chunk_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Like `load_audio`, but yields the audio in consecutive pieces, so a long file is never held in
    memory whole. Joined, the pieces equal what `load_audio` returns.

    Args:
        source: anything `load_audio` takes; only files are decoded piece by piece (bytes and arrays
            are already in memory and come as one piece).
        sampling_rate: the rate to return.
        source_rate: the rate of an array `source`.
        chunk_seconds: the least length of each piece but the last. A file whose header states a
            length up to this is decoded at once (faster), as one piece.

    Raises:
        AudioError, NoSpeechError: as `load_audio`, when the first piece is requested.
    """
    if not isinstance(source, (str, os.PathLike)):
        yield load_audio(source, sampling_rate, source_rate)
        return
    path = _check_file(source)
    stated = _stated_duration(str(path))
    if stated is not None and stated <= chunk_seconds:
        yield _decode(str(path), sampling_rate, what=str(path))
        return
    yield from _decode_pieces(str(path), sampling_rate, str(path), max(1, int(chunk_seconds * sampling_rate)))


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

    path = _check_file(path)
    try:
        return AudioDecoder(str(path)).metadata.duration_seconds_from_header
    except Exception as error:
        reason = _reason(error, str(path))
        raise AudioError(f"{path}: not a readable audio file ({reason}); expected {ACCEPTED}") from None


def _check_file(source) -> Path:
    path = Path(source)
    if not path.is_file():
        raise AudioError(f"{path}: no such file" if not path.exists() else f"{path}: not a file; expected {ACCEPTED}")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes); expected {ACCEPTED}")
    return path


def _stated_duration(path: str) -> float | None:
    from torchcodec.decoders import AudioDecoder

    try:
        return AudioDecoder(path).metadata.duration_seconds_from_header
    except Exception:
        return None  # the piecewise decoder reports what is wrong


def _decode(source, sampling_rate: int, what: str) -> np.ndarray:
    """Decode all of `source` at once; a file that fails part way (e.g. truncated) is decoded again
    packet by packet, keeping the audio before the damage, as players do."""
    from torchcodec.decoders import AudioDecoder

    try:
        decoder = AudioDecoder(source, sample_rate=sampling_rate, num_channels=1)
    except Exception:
        decoder = None  # the packet decoder below reports why
    if decoder is not None:
        _check_source_rate(decoder.metadata.sample_rate, what)
        try:
            return _finish(decoder.get_all_samples().data[0].numpy(), what)
        except AudioError:
            raise
        except Exception:
            pass
    pieces = list(_decode_pieces(source, sampling_rate, what, chunk_samples=None))
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _check_source_rate(rate, what: str) -> None:
    # A header can claim any rate: a 100 kB WAV that says 1 Hz would become 17 hours of audio at 16 kHz.
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{what}: its header gives a sampling rate of {rate} Hz; audio from {MIN_RATE} to "
                         f"{MAX_RATE} Hz is accepted")


def _decode_pieces(source, sampling_rate: int, what: str, chunk_samples: int | None) -> Iterator[np.ndarray]:
    """Decode packet by packet in one pass (no seeking, so the pieces join exactly), yielding mono
    float32 pieces of at least `chunk_samples` (None: one piece). Damaged packets are skipped."""
    from torchcodec.decoders import AudioConverter, Demuxer

    try:
        demuxer = Demuxer(source, streams="audio")
        decoder = demuxer.streams[0].make_decoder()
        rate = demuxer.streams[0].metadata.sample_rate
    except Exception as error:
        raise AudioError(f"{what}: not a readable audio file ({_reason(error, what)}); expected {ACCEPTED}") from None
    _check_source_rate(rate, what)
    converter = AudioConverter(sample_rate=sampling_rate, num_channels=1)
    pending, pending_samples, emitted, converted, damaged = [], 0, 0, False, None

    def frames():
        nonlocal damaged
        for packet in demuxer:
            try:
                yield from decoder.decode(packet)
            except Exception as error:  # one bad packet; FFmpeg decoders resume at the next
                damaged = damaged or _reason(error, what)
        try:
            yield from decoder.drain()
        except Exception as error:
            damaged = damaged or _reason(error, what)

    try:
        for raw in frames():
            piece = converter.convert(raw).data[0].numpy()
            converted = True
            pending.append(piece)
            pending_samples += piece.size
            if chunk_samples is not None and pending_samples >= chunk_samples:
                wave = _clip(np.concatenate(pending), what, at=emitted / sampling_rate)
                pending, pending_samples = [], 0
                emitted += wave.size
                yield wave
        if converted:
            pending.append(converter.drain().data[0].numpy())
    except AudioError:
        raise
    except Exception as error:
        damaged = damaged or _reason(error, what)
    if damaged:
        if not converted:
            raise AudioError(f"{what}: not a readable audio file ({damaged}); expected {ACCEPTED}")
        log.warning("%s: skipped damaged audio data (%s)", what, damaged)
    wave = np.concatenate(pending) if pending else np.zeros(0, np.float32)
    if emitted == 0:
        yield _finish(wave, what)
    elif wave.size:
        yield _clip(wave, what, at=emitted / sampling_rate)


def _reason(error: Exception, what: str = "") -> str:
    """The first line of a decoder error, without torchcodec's source location ("SingleStreamDecoder,
    x.cpp:41, ") and without the file name, which the message already starts with."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"^\w+, \S+:\d+, ", "", text)
    if "No audio frames were decoded" in text:
        return "it holds no audio frames"
    if what and len(what) < len(text):
        text = text.replace(what + " ", "").replace(what, "")
    return text.strip() or type(error).__name__


def _rate(value, name: str) -> int:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise AudioError(f"the {name} must be a number of Hz, got {value!r}") from None
    if not (math.isfinite(rate) and rate == int(rate) and MIN_RATE <= rate <= MAX_RATE):
        raise AudioError(f"the {name} must be a whole number of Hz from {MIN_RATE} to {MAX_RATE}, got {value!r}")
    return int(rate)


def _from_array(array, source_rate, sampling_rate: int) -> np.ndarray:
    source_rate = _rate(source_rate, "sampling rate")
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        array = (array.float() if array.dtype in (torch.bfloat16, torch.float16) else array).numpy()
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as error:  # ragged nested lists and the like
        raise AudioError(f"audio samples must form a 1-D or 2-D array of numbers ({error})") from None
    if array.dtype.kind not in "iuf":
        raise AudioError(f"audio samples must be integers or floats, got dtype {array.dtype}")
    if array.ndim == 2:
        channel_axis = 0 if array.shape[0] <= array.shape[1] else 1
        if array.shape[channel_axis] > MAX_CHANNELS:
            raise AudioError(f"an array of shape {array.shape} has more than {MAX_CHANNELS} channels on either "
                             "axis; give (channels, samples) or (samples, channels)")
        if array.size == 0:
            return _finish(np.zeros(0, np.float32), "the audio array")
        array = _to_float(array).mean(axis=channel_axis)
    elif array.ndim == 1:
        array = _to_float(array)
    else:
        raise AudioError(f"audio must be 1-D (samples) or 2-D (channels x samples), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise AudioError("the audio array contains NaN or infinite samples")
    peak = float(np.abs(array).max()) if array.size else 0.0
    if peak > 1.0:
        array = array / peak
    array = array.astype(np.float32)
    if source_rate != sampling_rate and array.size:
        array = _resampler(source_rate, sampling_rate)(torch.from_numpy(np.ascontiguousarray(array))).numpy()
    return _finish(array, "the audio array")


def _to_float(array: np.ndarray) -> np.ndarray:
    """float64 in [-1, 1] for integers; floats as they are (float64, so a huge value cannot overflow)."""
    if array.dtype.kind == "f":
        return array.astype(np.float64)
    half = 2.0 ** (8 * array.dtype.itemsize - 1)
    if array.dtype.kind == "u":
        return (array.astype(np.float64) - half) / half
    return array.astype(np.float64) / half


@functools.lru_cache(maxsize=16)
def _resampler(source_rate: int, sampling_rate: int) -> torchaudio.transforms.Resample:
    # Building the resampling kernel costs more than applying it to a short clip: build it once per pair.
    divisor = math.gcd(source_rate, sampling_rate)
    down, up = source_rate // divisor, sampling_rate // divisor
    if down * up > MAX_KERNEL_TAPS:
        ratio = Fraction(sampling_rate, source_rate).limit_denominator(int(math.sqrt(MAX_KERNEL_TAPS * down / up)))
        down, up = ratio.denominator, ratio.numerator
    return torchaudio.transforms.Resample(down, up)


def _clip(wave: np.ndarray, what: str, at: float = 0.0) -> np.ndarray:
    """`wave` limited to [-1, 1] (a new array only when some sample is outside); `AudioError` for NaN or
    infinity, `at` seconds being where `wave` starts in the recording."""
    if not np.isfinite(wave).all():
        where = f" after {at:.1f} s" if at else ""
        raise AudioError(f"{what}: contains NaN or infinite samples{where}")
    return np.clip(wave, -1.0, 1.0) if wave.size and np.abs(wave).max() > 1.0 else wave


def _finish(wave: np.ndarray, what: str) -> np.ndarray:
    if wave.size == 0:
        raise NoSpeechError(f"{what}: holds no audio samples")
    # Resampling can overshoot full scale a little; the contract is [-1, 1].
    return _clip(np.ascontiguousarray(wave, dtype=np.float32), what)


# Energy-based "speech" frames: the rule the model's front end uses to place its window (frames within RANGE_DB of
# the loudest). They do not decide whether there is speech (the detector in `ser.vad` does); they serve to measure
# levels on the loud part of a clip, e.g. the SNR of `bench.robustness`.

def frame_levels(wave: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Energy in dBFS of each analysis frame of `wave` (the model's frames: 25 ms every 20 ms; a last partial
    frame is left out), after removing the wave's mean (a DC offset is not speech).

    Args:
        wave: mono samples.
        sampling_rate: their rate.
    """
    frame, hop = frame_samples(sampling_rate)
    if len(wave) < frame:
        return np.zeros(0)
    wave = torch.from_numpy(np.asarray(wave, dtype=np.float64))[None]
    return power_db(frame_power(remove_offset(wave), frame, hop))[0].numpy()


def frame_samples(sampling_rate: int) -> tuple[int, int]:
    """(length, hop) in samples of the analysis frame at `sampling_rate`."""
    return max(1, int(FRAME_SECONDS * sampling_rate)), max(1, int(HOP_SECONDS * sampling_rate))


def speech_mask(levels: np.ndarray, range_db: float = RANGE_DB, floor_db: float = FLOOR_DB) -> np.ndarray:
    """Which frames of `frame_levels` are energy-based speech frames (`ser.modeling_ser.speech_frames`: within
    `range_db` of the loudest frame). None are when the loudest frame is below `floor_db` dBFS: the recording is
    silent. Not a speech detector: a tone or noise passes too (see `ser.vad`)."""
    levels = np.asarray(levels, dtype=np.float64)
    if levels.size == 0 or levels.max() < floor_db:
        return np.zeros(levels.shape, dtype=bool)
    return _speech_frames(torch.from_numpy(levels), range_db).numpy()


def speech_frames(wave: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Boolean mask of the energy-based speech frames of `wave` (`speech_mask` of its `frame_levels`)."""
    return speech_mask(frame_levels(wave, sampling_rate))


def speech_samples(wave: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Boolean mask of the samples in energy-based speech frames (all samples if there are none)."""
    frames = speech_frames(wave, sampling_rate)
    frame, hop = frame_samples(sampling_rate)
    mask = np.zeros(len(wave), dtype=bool)
    for index in np.flatnonzero(frames):
        mask[index * hop: index * hop + frame] = True
    return mask if mask.any() else np.ones(len(wave), dtype=bool)
