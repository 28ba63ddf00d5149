"""Robustness benchmark: how much UA the EmoBox fold models lose on noisy, narrow-band, compressed or badly
levelled speech.

    python -m bench.robustness --data ../shared/data/ravdess          # the 6 fold models of bench.accuracy
    python -m bench.robustness --data DIR --folds 1 3 --output DIR    # a subset of the folds, elsewhere
    python -m bench.robustness --data DIR --models runs/X --validation-actors --output DIR  # to choose a recipe

Each fold model (`--models DIR/foldN/model`, a `save_pretrained` checkpoint, as `python -m bench.accuracy --only
default --protocols emobox` leaves them) is scored on the clips of that fold's test actors (from the fold's
metrics.json, else `train.data.EMOBOX_FOLDS`, or `--test-actors`), clean and under each degradation below.
`--validation-actors` scores each fold model on its own validation actors instead, so that a training recipe can
be chosen for robustness without looking at the test folds (babble then comes from the one other validation
actor).
Predictions go through `ser.EmotionRecognizer.probabilities`, as users' do; the score is unweighted accuracy (UA,
mean per-class recall, from train/emotion_metrics). Every random choice comes from a generator seeded by
`--seed`, the condition and the clip, so results do not depend on the order or subset of folds.

Degradations (16 kHz mono, lengths kept):
- white / pink noise at 20, 10 and 5 dB SNR, and babble at 10 dB. SNR is the clean clip's speech power over the
  noise power, both measured on the frames the energy detector (`ser.audio.speech_frames`) marks as speech in the
  clean clip, so the silence around RAVDESS sentences does not dilute it. Pink noise is white Gaussian noise
  shaped by 1/sqrt(f) (-3 dB per octave). Babble is 3-5 clips of OTHER actors of the same test fold, each cut
  to its speech, scaled to equal speech power, looped to the clip's length from a random point, and summed;
- telephone: resampled to 8 kHz, band-passed 300-3400 Hz (4th-order Butterworth high- and low-pass, as
  biquads), resampled back to 16 kHz (torchaudio.functional);
- MP3 at 32 kbit/s: encoded and decoded in process with torchcodec (FFmpeg's libmp3lame; gapless, so the
  decoded clip lines up with the original), or through the ffmpeg command line when torchcodec cannot encode;
- gain -20 dB: every sample times 0.1;
- clipping: hard clipping at 10 % of the clip's peak (20 dB of overdrive), then re-levelled to the clean
  clip's speech power, so that this condition measures the distortion alone (level is the gain condition's).

Writes robustness.json (per fold and mean UA per condition, and the drop vs clean in points) and README.md
(a table and the goals: at 10 dB SNR a drop of at most 10 points, under a gain change at most 1 point) to
--output (default bench/results/robustness).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import ROOT, run_actors, shown
from ser.audio import speech_samples

DEFAULT_MODELS = ROOT / "bench" / "results" / "accuracy" / "default_emobox"
RESULTS = ROOT / "bench" / "results" / "robustness"
RATE = 16000
TELEPHONE_RATE = 8000
TELEPHONE_BAND = (300.0, 3400.0)
BUTTERWORTH_Q = (0.5412, 1.3066)  # the two biquads of a 4th-order Butterworth filter
MP3_BIT_RATE = 32000
GAIN_DB = -20.0
CLIP_FRACTION = 0.1  # clip at 10 % of the peak: 20 dB of overdrive
BABBLE_TALKERS = (3, 5)
GOAL_SNR_DROP = 10.0  # points, at 10 dB SNR
GOAL_GAIN_CHANGE = 1.0  # points


# ---------------------------------------------------------------- degradations, each on one mono float32 clip

def power(wave: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean power of `wave` (mean removed) over the samples in `mask` (default: all)."""
    wave = np.asarray(wave, dtype=np.float64)
    wave = wave - wave.mean()
    return float(np.mean(wave[mask] ** 2 if mask is not None else wave**2))


def white_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(length)


def pink_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power falls 3 dB per octave (1/f), shaped in the frequency domain; no DC."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length)
    spectrum[1:] /= np.sqrt(frequencies[1:])
    spectrum[0] = 0
    return np.fft.irfft(spectrum, n=length)


def add_noise(wave: np.ndarray, noise: np.ndarray, snr_db: float, speech: np.ndarray | None = None) -> np.ndarray:
    """`wave` plus `noise` scaled so that speech power / noise power = `snr_db`, both measured over the samples
    in `speech` (default: the clean clip's speech frames, see `speech_samples`)."""
    speech = speech_samples(wave, RATE) if speech is None else speech
    scale = np.sqrt(power(wave, speech) / (power(noise, speech) * 10 ** (snr_db / 10)))
    return (wave + scale * noise).astype(np.float32)


def babble_noise(length: int, talkers: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """The sum of `talkers` (clips of other speakers), each cut to its speech (first to last speech frame),
    scaled to unit speech power and looped to `length` from a random starting point."""
    total = np.zeros(length)
    for clip in talkers:
        mask = speech_samples(clip, RATE)
        where = np.flatnonzero(mask)
        speech = np.asarray(clip[where[0]: where[-1] + 1], dtype=np.float64)
        speech = speech / np.sqrt(power(clip, mask))
        looped = np.resize(speech, length + len(speech))  # np.resize repeats the array
        start = int(rng.integers(len(speech)))
        total += looped[start: start + length]
    return total


def telephone(wave: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Narrow-band telephone speech: to 8 kHz, band-pass 300-3400 Hz, back to `rate`; same length."""
    import torchaudio.functional as F

    x = F.resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), rate, TELEPHONE_RATE)
    for q in BUTTERWORTH_Q:
        x = F.highpass_biquad(x, TELEPHONE_RATE, TELEPHONE_BAND[0], q)
        x = F.lowpass_biquad(x, TELEPHONE_RATE, TELEPHONE_BAND[1], q)
    y = F.resample(x, TELEPHONE_RATE, rate).numpy()
    return fit_length(y, len(wave))


def mp3_roundtrip(wave: np.ndarray, rate: int = RATE, bit_rate: int = MP3_BIT_RATE) -> tuple[np.ndarray, int]:
    """Encode to MP3 at `bit_rate` and decode again: (decoded mono float32 at `rate`, size of the MP3 in bytes).
    The decoded length is FFmpeg's (gapless); `degrade` trims or pads it to the clip's."""
    samples = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
    try:
        from torchcodec.decoders import AudioDecoder
        from torchcodec.encoders import AudioEncoder

        encoded = AudioEncoder(samples, sample_rate=rate).to_tensor("mp3", bit_rate=bit_rate)
        decoded = AudioDecoder(encoded, sample_rate=rate, num_channels=1).get_all_samples().data[0].numpy()
        return decoded.astype(np.float32), encoded.numel()
    except Exception:  # torchcodec without an MP3 encoder: the ffmpeg command line
        return _mp3_roundtrip_ffmpeg(wave, rate, bit_rate)


def _mp3_roundtrip_ffmpeg(wave: np.ndarray, rate: int, bit_rate: int) -> tuple[np.ndarray, int]:
    # The MP3 goes through a file, not a pipe: FFmpeg writes the gapless (LAME) header last, by seeking back
    # to the start; without it the decoded clip would start with ~1100 samples of encoder delay.
    raw = ["-f", "f32le", "-ar", str(rate), "-ac", "1"]
    ffmpeg = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    with tempfile.TemporaryDirectory() as folder:
        mp3 = str(Path(folder) / "clip.mp3")
        subprocess.run([*ffmpeg, *raw, "-i", "pipe:0", "-b:a", str(bit_rate), mp3],
                       input=np.ascontiguousarray(wave, dtype="<f4").tobytes(), capture_output=True, check=True)
        decoded = subprocess.run([*ffmpeg, "-i", mp3, *raw, "pipe:1"], capture_output=True, check=True).stdout
        return np.frombuffer(decoded, dtype="<f4").copy(), Path(mp3).stat().st_size


def gain(wave: np.ndarray, db: float = GAIN_DB) -> np.ndarray:
    return (np.asarray(wave, dtype=np.float64) * 10 ** (db / 20)).astype(np.float32)


def hard_clip(wave: np.ndarray, fraction: float = CLIP_FRACTION, speech: np.ndarray | None = None) -> np.ndarray:
    """Clip at `fraction` of the peak, then scale to the clean clip's speech power (see the module docstring)."""
    speech = speech_samples(wave, RATE) if speech is None else speech
    limit = fraction * float(np.abs(wave).max())
    clipped = np.clip(np.asarray(wave, dtype=np.float64), -limit, limit)
    return (clipped * np.sqrt(power(wave, speech) / power(clipped, speech))).astype(np.float32)


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)[:length]
    return np.pad(wave, (0, length - len(wave))) if len(wave) < length else wave


# ---------------------------------------------------------------- conditions over the clips of one test fold

@dataclass
class FoldClips:
    """The test clips of one fold: waveforms, actors, speech masks, and a stable key per clip (for seeding)."""

    waves: list[np.ndarray]
    actors: np.ndarray
    references: np.ndarray  # class ids of the model being scored
    keys: list[tuple[int, ...]]

    def __post_init__(self):
        self.speech = [speech_samples(w, RATE) for w in self.waves]


def babble_talkers(clips: FoldClips, index: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of 3-5 clips of actors other than clip `index`'s, drawn from the fold without repeats."""
    others = np.flatnonzero(clips.actors != clips.actors[index])
    if len(others) < BABBLE_TALKERS[0]:
        raise ValueError(f"babble needs at least {BABBLE_TALKERS[0]} clips of other actors of the test fold than "
                         f"actor {clips.actors[index]}; found {len(others)} (test actors: "
                         f"{sorted(set(clips.actors.tolist()))})")
    count = min(int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1)), len(others))
    return rng.choice(others, size=count, replace=False)


def babble(clips: FoldClips, index: int, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    wave = clips.waves[index]
    talkers = [clips.waves[i] for i in babble_talkers(clips, index, rng)]
    return add_noise(wave, babble_noise(len(wave), talkers, rng), snr_db, clips.speech[index])


def _noise(kind: Callable, snr_db: float):
    def apply(clips: FoldClips, i: int, rng: np.random.Generator) -> np.ndarray:
        wave = clips.waves[i]
        return add_noise(wave, kind(len(wave), rng), snr_db, clips.speech[i])
    return apply


CONDITIONS: dict[str, tuple[str, Callable[[FoldClips, int, np.random.Generator], np.ndarray]]] = {
    "clean": ("the clips as they are", lambda c, i, rng: c.waves[i]),
    **{f"white_{snr}db": (f"white noise at {snr} dB SNR", _noise(white_noise, snr)) for snr in (20, 10, 5)},
    **{f"pink_{snr}db": (f"pink noise at {snr} dB SNR", _noise(pink_noise, snr)) for snr in (20, 10, 5)},
    "babble_10db": ("babble of 3-5 other actors of the fold at 10 dB SNR", lambda c, i, rng: babble(c, i, rng, 10)),
    "telephone": ("8 kHz, 300-3400 Hz band-pass, back to 16 kHz", lambda c, i, rng: telephone(c.waves[i])),
    "mp3_32k": ("MP3 at 32 kbit/s", lambda c, i, rng: fit_length(mp3_roundtrip(c.waves[i])[0], len(c.waves[i]))),
    "gain_-20db": ("gain -20 dB", lambda c, i, rng: gain(c.waves[i])),
    "clipping": ("hard clipping at 10 % of the peak, re-levelled to the clean speech power",
                 lambda c, i, rng: hard_clip(c.waves[i], speech=c.speech[i])),
}
SNR_10DB = ("white_10db", "pink_10db", "babble_10db")


def degrade(clips: FoldClips, condition: str, seed: int = 0) -> list[np.ndarray]:
    """Every clip of the fold under `condition`, each with its own generator (seed, condition, clip key)."""
    apply = CONDITIONS[condition][1]
    tag = zlib.crc32(condition.encode())
    return [apply(clips, i, np.random.default_rng([seed, tag, *clips.keys[i]])) for i in range(len(clips.waves))]


# ---------------------------------------------------------------- folds: models, test actors, scores

def resolve_test_actors(fold: int, fold_dir: Path, override: list[int] | None,
                        validation: bool = False) -> tuple[list[int], str, list[int]]:
    """(test actors, where they came from, the model's training + validation actors as far as known).
    `validation` takes the fold's validation actors instead, which trained nothing (and seen becomes the
    training actors alone)."""
    from train.data import EMOBOX_FOLDS

    metrics_file = fold_dir / "metrics.json"
    actors = run_actors(json.loads(metrics_file.read_text())) if metrics_file.is_file() else {}
    if validation:
        if not actors.get("validation"):
            raise ValueError(f"fold {fold}: {metrics_file} lists no validation actors")
        return sorted(actors["validation"]), shown(metrics_file) + " (validation)", sorted(actors.get("train", []))
    seen = sorted(set(actors.get("train", [])) | set(actors.get("validation", [])))
    if override:
        return sorted(override), "--test-actors", seen
    if actors.get("test"):
        return sorted(actors["test"]), shown(metrics_file), seen
    if fold not in EMOBOX_FOLDS:
        raise ValueError(f"fold {fold}: {metrics_file} lists no test actors and {fold} is not an EmoBox fold (1-6); "
                         "pass --test-actors")
    return sorted(EMOBOX_FOLDS[fold]), "train.data.EMOBOX_FOLDS", seen


def fold_clips(dataset, actors: list[int], labels: list[str], fold: int, source: str) -> tuple[FoldClips, dict]:
    """The clips of `actors` in `dataset` with class ids of the model (`labels`); raises ValueError if none."""
    from ser import RAVDESS_EMOTIONS

    all_actors = np.asarray(dataset["actor"])
    rows = np.flatnonzero(np.isin(all_actors, actors))
    if len(rows) == 0:
        raise ValueError(f"fold {fold}: none of its test actors {actors} has clips in {source} (it holds actors "
                         f"{sorted(set(all_actors.tolist()))}); point --data at the complete RAVDESS set or pass "
                         "--test-actors")
    subset = dataset.select(rows)
    emotions = [RAVDESS_EMOTIONS[e] for e in subset["emotion"]]
    keep = [i for i, e in enumerate(emotions) if e in labels]
    info = {"missing_actors": sorted(set(actors) - set(all_actors[rows].tolist())),
            "clips_outside_model_classes": len(emotions) - len(keep)}
    subset = subset.select(keep)
    columns = subset.column_names
    key_columns = [c for c in ("emotion", "intensity", "statement", "repetition") if c in columns]
    table = {c: subset[c] for c in ["actor", *key_columns]}
    keys = []
    for i in range(len(subset)):
        key = [int(table["actor"][i])]
        for c in key_columns:
            value = table[c][i]
            key.append({"normal": 1, "strong": 2}.get(value, value) if isinstance(value, str) else int(value))
        keys.append(tuple(key))
    if len(set(keys)) < len(keys):  # not RAVDESS file-name fields: fall back to the position in the fold
        keys = [(int(a), i) for i, a in enumerate(table["actor"])]
    waves = [np.asarray(w, dtype=np.float32) for w in subset.with_format("numpy")["input_values"]]
    clips = FoldClips(waves=waves, actors=np.asarray(table["actor"]),
                      references=np.asarray([labels.index(emotions[i]) for i in keep]), keys=keys)
    return clips, info


def score(recognizer, clips: FoldClips, waves: list[np.ndarray], metric, batch_size: int) -> dict:
    from ser.audio import NoSpeechError
    from ser.vad import MIN_SPEECH_SECONDS, require_speech

    probabilities = np.concatenate([recognizer.probabilities(waves[i: i + batch_size])
                                    for i in range(0, len(waves), batch_size)])
    predictions = probabilities.argmax(-1)
    result = metric.compute(predictions=predictions, references=clips.references, num_labels=len(recognizer.labels))
    # A fold's mean hides which voices are hard; each actor has 60 clips, so read these as rough.
    per_actor = {}
    for actor in np.unique(clips.actors):
        rows = clips.actors == actor
        per_actor[str(int(actor))] = metric.compute(predictions=predictions[rows], references=clips.references[rows],
                                                    num_labels=len(recognizer.labels))["unweighted_accuracy"]
    rejected = 0  # clips that EmotionRecognizer.predict would refuse: too little speech for the speech detector
    for wave in waves:
        try:
            require_speech(wave, recognizer.sampling_rate, MIN_SPEECH_SECONDS)
        except NoSpeechError:
            rejected += 1
    return {"unweighted_accuracy": result["unweighted_accuracy"], "accuracy": result["accuracy"],
            "unweighted_accuracy_per_actor": per_actor, "rejected_by_predict": rejected}


def run_fold(fold: int, models: Path, dataset, source: str, conditions: list[str], override: list[int] | None,
             seed: int, batch_size: int, metric, validation: bool = False,
             test_time_speeds: list[float] | None = None) -> dict:
    import ser

    fold_dir = models / f"fold{fold}"
    model_dir = fold_dir / "model"
    if not model_dir.is_dir():
        raise ValueError(f"fold {fold}: no model at {model_dir}; train the fold models with `python -m bench.accuracy "
                         "--only default --protocols emobox` (keeping their model/ folders) or pass --models")
    recognizer = ser.EmotionRecognizer(str(model_dir))
    if test_time_speeds is not None:
        recognizer.model.config.test_time_speeds = list(test_time_speeds)
    actors, actors_from, seen = resolve_test_actors(fold, fold_dir, override, validation)
    clips, info = fold_clips(dataset, actors, recognizer.labels, fold, source)
    if info["missing_actors"]:
        print(f"  warning: fold {fold}: no clips of test actor(s) {info['missing_actors']} in {source}", flush=True)
    if "babble_10db" in conditions and len(set(clips.actors.tolist())) < 2:
        raise ValueError(f"fold {fold}: babble needs clips of at least 2 test actors, but {source} holds clips of "
                         f"only actor {clips.actors[0]} of {actors}; pass --test-actors or leave babble out with "
                         "--conditions")
    overlap = sorted(set(actors) & set(seen))
    if overlap:
        print(f"  warning: fold {fold}: test actor(s) {overlap} also trained or validated this model: its scores "
              "are speaker-dependent", flush=True)
    result = {"model": shown(model_dir), "test_actors": actors, "test_actors_from": actors_from,
              "actors_in_data": sorted(set(clips.actors.tolist())), "clips": len(clips.waves),
              "test_actors_seen_in_training": overlap, **info, "conditions": {}}
    for condition in conditions:
        started = time.time()
        scores = score(recognizer, clips, degrade(clips, condition, seed), metric, batch_size)
        result["conditions"][condition] = scores
        print(f"  fold {fold} {condition:12s} UA {scores['unweighted_accuracy']:6.1%}"
              f"  ({time.time() - started:.1f} s)", flush=True)
    clean = result["conditions"]["clean"]["unweighted_accuracy"]
    for scores in result["conditions"].values():
        scores["drop_points"] = 100 * (clean - scores["unweighted_accuracy"])
    return result


def summarize(folds: dict[int, dict], conditions: list[str]) -> dict:
    summary = {}
    for condition in conditions:
        ua = np.array([f["conditions"][condition]["unweighted_accuracy"] for f in folds.values()])
        drops = np.array([f["conditions"][condition]["drop_points"] for f in folds.values()])
        summary[condition] = {
            "unweighted_accuracy": float(ua.mean()),
            "unweighted_accuracy_std": float(ua.std(ddof=1)) if len(ua) > 1 else 0.0,
            "drop_points": float(drops.mean()),
            "per_fold": {str(k): float(v) for k, v in zip(folds, ua)},
        }
    return summary


def goals(summary: dict) -> dict:
    checks = {}
    for condition in SNR_10DB:
        if condition in summary:
            drop = summary[condition]["drop_points"]
            checks[condition] = {"goal": f"drop ≤ {GOAL_SNR_DROP:g} points", "drop_points": drop,
                                 "met": bool(drop <= GOAL_SNR_DROP)}
    if "gain_-20db" in summary:
        change = summary["gain_-20db"]["drop_points"]
        checks["gain_-20db"] = {"goal": f"change within ±{GOAL_GAIN_CHANGE:g} point", "drop_points": change,
                                "met": bool(abs(change) <= GOAL_GAIN_CHANGE)}
    return checks


def per_actor_table(report: dict) -> list[str]:
    """Clean and babble UA of each scored actor, hardest first (60 clips an actor: a rough figure)."""
    shown = [c for c in ("clean", "babble_10db") if c in report["summary"]]
    rows = {}
    for k, fold in report["folds"].items():
        for actor in fold["conditions"]["clean"]["unweighted_accuracy_per_actor"]:
            rows[int(actor)] = (k, [fold["conditions"][c]["unweighted_accuracy_per_actor"][actor] for c in shown])
    lines = ["", "UA per actor, hardest first (each actor's clips, scored by the model of the fold that held it "
             "out; about 60 clips an actor, so a few points either way):", "",
             "| actor | fold | " + " | ".join(shown) + " |", "| --- | --- | " + " | ".join("---" for _ in shown) + " |"]
    for actor, (fold, uas) in sorted(rows.items(), key=lambda item: item[1][1][0]):
        lines.append(f"| {actor} | {fold} | " + " | ".join(f"{ua:.1%}" for ua in uas) + " |")
    return lines


def markdown(report: dict) -> str:
    folds = list(report["folds"])
    seen = any(f["test_actors_seen_in_training"] for f in report["folds"].values())
    lines = [
        "# Robustness of the EmoBox fold models (RAVDESS, 8 classes)",
        "",
        f"Produced by `{report['command']}`. UA = unweighted accuracy (mean per-class recall) on each fold's "
        + ("VALIDATION actors (for choosing a recipe; the test actors are not scored), whom the fold's model never "
           "trained on" if report.get("validation_actors") else
           "test actors, whom the fold's model never heard" if not seen else
           "actors (see *Test sets* below: some of them trained the model, so these figures are speaker-DEPENDENT)")
        + "; drop = clean UA minus the condition's UA, in points "
        "(positive: worse). Degradations are described in `bench/robustness.py`; SNR is measured on the clean "
        "clip's speech frames.",
        "",
        "Goals (issue 4): at 10 dB SNR (white, pink, babble) the UA drops by at most "
        f"{GOAL_SNR_DROP:g} points, and a gain change (-20 dB) moves it by at most {GOAL_GAIN_CHANGE:g} point.",
        "",
        f"| condition | mean UA over {len(folds)} fold{'s' * (len(folds) > 1)} | drop vs clean (points) | "
        f"per-fold UAs (fold {', '.join(folds)}) |",
        "| --- | --- | --- | --- |",
    ]
    for condition, s in report["summary"].items():
        per_fold = ", ".join(f"{v:.1%}" for v in s["per_fold"].values())
        drop = "–" if condition == "clean" else f"{s['drop_points']:+.1f}"
        lines.append(f"| {condition} ({report['conditions'][condition]}) | {s['unweighted_accuracy']:.1%} "
                     f"| {drop} | {per_fold} |")
    lines += ["", "| goal | condition | drop (points) | met |", "| --- | --- | --- | --- |"]
    for condition, g in report["goals"].items():
        lines.append(f"| {g['goal']} | {condition} | {g['drop_points']:+.1f} | {'yes' if g['met'] else '**no**'} |")
    rejected = {c: sum(f["conditions"][c]["rejected_by_predict"] for f in report["folds"].values())
                for c in report["summary"]}
    if any(rejected.values()):
        lines += ["", "Clips that `EmotionRecognizer.predict` would refuse as silence (`NoSpeechError`), scored "
                  "here anyway: " + ", ".join(f"{c}: {n}" for c, n in rejected.items() if n) + "."]
    lines += per_actor_table(report)
    notes = [f"fold {k}: actors {f['test_actors']} from {f['test_actors_from']}"
             + (f", none of whose clips of {f['missing_actors']} were in the data" if f["missing_actors"] else "")
             + (f"; **{f['test_actors_seen_in_training']} also trained or validated the model**"
                if f["test_actors_seen_in_training"] else "") + f" ({f['clips']} clips)"
             for k, f in report["folds"].items()]
    lines += ["", ("Scored (validation) actors: " if report.get("validation_actors") else "Test sets: ")
              + "; ".join(notes) + ".", ""]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.robustness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="RAVDESS source, as for `python -m train --data`")
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS,
                        help="folder with fold1/model ... fold6/model (default: %(default)s)")
    parser.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--test-actors", type=int, nargs="+", metavar="ACTOR",
                        help="score every fold on these actors instead of its own test actors (e.g. for a "
                             "data set without them); the scores are then not speaker-independent")
    parser.add_argument("--validation-actors", action="store_true",
                        help="score every fold on its own validation actors (listed in its metrics.json) instead "
                             "of its test actors: for choosing a recipe without looking at the test folds")
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=list(CONDITIONS),
                        help="a subset of the conditions (clean is always run)")
    parser.add_argument("--test-time-speeds", type=float, nargs="*", metavar="SPEED",
                        help="predict with these `SERConfig.test_time_speeds` instead of each checkpoint's own "
                             "(e.g. 0.9 1.1 for the opt-in test-time averaging; none for one pass)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    conditions = ["clean", *[c for c in CONDITIONS if c in args.conditions and c != "clean"]]
    torch.set_num_threads(args.threads)

    import evaluate

    from train.corpora import load_ravdess
    from train.train import METRICS_MODULE

    if args.validation_actors and args.test_actors:
        parser.error("--validation-actors and --test-actors each choose the actors to score: pass one")
    missing = [f for f in args.folds if not (args.models / f"fold{f}" / "model").is_dir()]
    system = args.models.name.removesuffix("_emobox") if args.models.name.endswith("_emobox") else "SYSTEM"
    if missing:
        parser.error(f"no fold model at {', '.join(str(args.models / f'fold{f}' / 'model') for f in missing)}; "
                     f"train them with `python -m bench.accuracy --only {system} --protocols emobox` (keeping their "
                     "model/ folders) or pass --models")
    dataset = load_ravdess(args.data)
    metric = evaluate.load(METRICS_MODULE)
    folds = {}
    started = time.time()
    for fold in args.folds:
        print(f"== fold {fold}", flush=True)
        try:
            folds[str(fold)] = run_fold(fold, args.models, dataset, args.data or "the Zenodo archive", conditions,
                                        args.test_actors, args.seed, args.batch_size, metric,
                                        args.validation_actors, args.test_time_speeds)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
    summary = summarize(folds, conditions)
    report = {
        "command": shlex.join(["python", "-m", "bench.robustness", *argv]),
        "data": args.data,
        "models": shown(args.models),
        "seed": args.seed,
        "test_time_speeds": args.test_time_speeds,
        "validation_actors": args.validation_actors,
        "conditions": {c: CONDITIONS[c][0] for c in conditions},
        "summary": summary,
        "goals": goals(summary),
        "folds": folds,
        "seconds": round(time.time() - started, 1),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "robustness.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    (args.output / "README.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
