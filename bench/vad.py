"""Speech detector benchmark: how often the library refuses real speech, and how often it lets non-speech through.

    python -m bench.vad --ravdess ../shared/data/ravdess --tess ../shared/data/tess
    python -m bench.vad                      # the 32 fixture clips (tests/fixtures/ravdess) as the speech set

- **False rejects**: every clip of the speech corpora (RAVDESS: Actor_XX/*, TESS: */*), loaded with
  `ser.load_audio`, through the check `EmotionRecognizer.predict` runs on a clip (`ser.vad.require_speech`): the
  share refused with `NoSpeechError`. Goal: at most 0.5 %.
- **False accepts**: a generated non-speech set (`non_speech_set`, fixed seeds): pure tones, chirps, white, pink
  and brown noise at several levels, mains hum, clicks, silence with a DC offset, chords and arpeggios, stereo
  and 8-channel white noise. The share accepted, per kind and overall. Goal: at most 2 %.
- The same two figures for the energy gate the library used before (frames within 35 dB of the loudest frame,
  the loudest above -70 dBFS, at least 0.2 s of such frames), for contrast.
- The detector's own cost per clip on one thread: median and p95 milliseconds of `require_speech` on the loaded
  clip (it stops once it has found enough speech, so speech costs less than non-speech), and per second of audio.

Writes results.json and README.md to --output (default bench/results/vad).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import ser
from ser import vad
from ser.audio import speech_frames

from bench import ROOT, shown

RATE = 16000
SECONDS = 3.0
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "vad"
GOAL_FALSE_REJECTS, GOAL_FALSE_ACCEPTS = 0.005, 0.02


# ---------------------------------------------------------------------------------------------- non-speech

def _db(level_db: float) -> float:
    return 10 ** (level_db / 20)


def _peak(wave: np.ndarray, level_db: float) -> np.ndarray:
    """`wave` scaled to a peak of `level_db` dBFS."""
    return (wave / np.abs(wave).max() * _db(level_db)).astype(np.float32)


def _colored(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1 / f**exponent (0: white, 1: pink, 2: brown), shaped in the frequency domain."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    f[0] = f[1]
    return np.fft.irfft(spectrum / f ** (exponent / 2), n)


def _note(freq: float, t: np.ndarray, harmonics: int = 5, decay: float = 0.0) -> np.ndarray:
    """A harmonic tone (partials at 1/k amplitude), optionally decaying like a plucked string."""
    wave = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, harmonics + 1) if k * freq < RATE / 2)
    return wave * (np.exp(-decay * t) if decay else 1.0)


def _midi(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def non_speech_set() -> list[dict]:
    """The generated non-speech clips: dicts with kind, name, audio ((samples,) or (channels, samples)) and rate.
    Deterministic: every random part has its own fixed seed."""
    n = int(SECONDS * RATE)
    t = np.arange(n) / RATE
    items = []

    def add(kind, name, audio, rate=RATE):
        items.append({"kind": kind, "name": name, "audio": np.asarray(audio, dtype=np.float32), "rate": rate})

    for freq in (100, 220, 440, 1000, 3000, 6000):
        for level in (-6, -30):
            add("tone", f"{freq} Hz sine, {level} dBFS", _peak(np.sin(2 * np.pi * freq * t), level))
    add("tone", "440 Hz sine, 0.3 amplitude (the issue's)", 0.3 * np.sin(2 * np.pi * 440 * t))
    for low, high, shape in ((100, 4000, "linear"), (4000, 100, "linear"), (50, 8000, "log"), (300, 3000, "log"),
                             (200, 400, "linear"), (1000, 2000, "log")):
        if shape == "linear":
            phase = 2 * np.pi * (low * t + (high - low) * t ** 2 / (2 * SECONDS))
        else:
            k = (high / low) ** (1 / SECONDS)
            phase = 2 * np.pi * low * (k ** t - 1) / np.log(k)
        add("chirp", f"{shape} sweep {low}-{high} Hz", _peak(np.sin(phase), -10))
    for kind, exponent in (("white noise", 0), ("pink noise", 1), ("brown noise", 2)):
        for level in (-6, -20, -40, -60):
            for seed in (0, 1):
                rng = np.random.default_rng([int(exponent), level + 100, seed])
                add(kind, f"{level} dBFS peak, seed {seed}", _peak(_colored(rng, n, exponent), level))
    for mains in (50, 60):
        for level in (-6, -30):
            wave = sum(np.sin(2 * np.pi * k * mains * t + k) / k for k in range(1, 8))
            add("mains hum", f"{mains} Hz and 6 harmonics, {level} dBFS", _peak(wave, level))
        buzz = np.sign(np.sin(2 * np.pi * mains * t)) * 0.8 + np.sin(2 * np.pi * 2 * mains * t)
        add("mains hum", f"{mains} Hz buzz (square wave and 2nd harmonic)", _peak(buzz, -20))
    for rate_hz in (1, 4, 10, 50):
        clicks = np.zeros(n)
        clicks[:: int(RATE / rate_hz)] = 1.0
        add("clicks", f"{rate_hz} clicks/s, regular", _peak(clicks, -6))
    for seed in (0, 1, 2):
        rng = np.random.default_rng([7, seed])
        clicks = np.zeros(n)
        clicks[rng.integers(0, n - 64, 20)] = rng.uniform(0.2, 1.0, 20)
        # each click a short decaying burst, like a keyboard or a mouse
        clicks = np.convolve(clicks, np.exp(-np.arange(64) / 8) * rng.standard_normal(64), mode="same")
        add("clicks", f"20 random bursts, seed {seed}", _peak(clicks, -10))
    for offset in (0.01, 0.1, 0.5, -0.3):
        add("dc offset", f"constant {offset}", np.full(n, offset))
    rng = np.random.default_rng(11)
    add("dc offset", "constant 0.2 with -100 dBFS dither", 0.2 + _db(-100) * rng.standard_normal(n))
    add("dc offset", "digital silence", np.zeros(n))
    chords = {"C major": (60, 64, 67), "A minor": (57, 60, 64), "G7": (55, 59, 62, 65), "E minor low": (40, 47, 52),
              "F major 7 high": (77, 81, 84, 88)}
    for name, notes in chords.items():
        add("chord", f"{name}, sustained", _peak(sum(_note(_midi(m), t) for m in notes), -10))
        add("chord", f"{name}, plucked", _peak(sum(_note(_midi(m), t, decay=2.0) for m in notes), -10))
    for index, (root, pattern, step) in enumerate(((60, (0, 4, 7, 12), 0.25), (57, (0, 3, 7, 3), 0.2),
                                                    (48, (0, 7, 12, 16, 19), 0.15), (72, (0, 4, 7, 11), 0.3),
                                                    (45, (0, 12, 7, 15), 0.125))):
        wave = np.zeros(n)
        length = int(step * RATE)
        for i, start in enumerate(range(0, n, length)):
            piece = t[: min(length * 2, n - start)]  # each note rings on under the next
            wave[start: start + len(piece)] += _note(_midi(root + pattern[i % len(pattern)]), piece, decay=6.0)
        add("arpeggio", f"root {root}, {len(pattern)} notes every {step * 1000:.0f} ms", _peak(wave, -10))
    for channels in (2, 8):
        for level in (-6, -20):
            rng = np.random.default_rng([channels, -level])
            add(f"{channels}-channel white noise", f"48 kHz, {level} dBFS peak",
                _peak(rng.standard_normal((channels, int(SECONDS * 48000))), level), rate=48000)
    add("8-channel white noise", "16 kHz, 0.1 standard deviation (the issue's)",
        0.1 * np.random.default_rng(8).standard_normal((8, n)), rate=RATE)
    return items


# ---------------------------------------------------------------------------------------------- the two gates

def energy_gate_accepts(wave: np.ndarray) -> bool:
    """The library's earlier rule: at least 0.2 s of 20 ms frames within 35 dB of the loudest frame, the loudest
    frame above -70 dBFS (`ser.audio.speech_frames`, which the robustness benchmark still uses to measure SNR)."""
    return np.count_nonzero(speech_frames(wave, RATE)) * 0.020 >= vad.MIN_SPEECH_SECONDS and len(wave) >= 0.2 * RATE


def detector_accepts(wave: np.ndarray) -> tuple[bool, float]:
    """(whether `EmotionRecognizer.predict`'s check accepts the clip, its cost in seconds)."""
    start = time.perf_counter()
    try:
        vad.require_speech(wave, RATE)
        accepted = True
    except ser.NoSpeechError:
        accepted = False
    return accepted, time.perf_counter() - start


def corpus_files(name: str, folder: Path) -> list[Path]:
    pattern = "Actor_*/*.*" if name == "ravdess" else "*/*.*"
    return sorted(p for p in folder.glob(pattern) if p.suffix.lower() in (".flac", ".wav", ".mp3", ".ogg"))


def summary(accepted: list[bool], costs: list[float], seconds: list[float]) -> dict:
    costs_ms = np.asarray(costs) * 1000
    return {"clips": len(accepted), "accepted": int(sum(accepted)), "rejected": len(accepted) - int(sum(accepted)),
            "detector_ms_median": float(np.median(costs_ms)), "detector_ms_p95": float(np.percentile(costs_ms, 95)),
            "audio_seconds_mean": float(np.mean(seconds)),
            "detector_ms_per_audio_second": float(costs_ms.sum() / np.sum(seconds))}


def run(args) -> dict:
    torch.set_num_threads(1)
    vad.session()  # load once, outside the timings
    results = {"command": "python -m bench.vad " + " ".join(args.argv), "detector": {
        "name": "Silero VAD", "package": f"silero-vad {_version('silero-vad')}", "model": vad.MODEL_FILE,
        "runtime": f"onnxruntime {_version('onnxruntime')}, 1 thread", "threshold": vad.THRESHOLD,
        "frame_ms": vad.FRAME_SECONDS * 1000, "min_speech_seconds": vad.MIN_SPEECH_SECONDS},
        "machine": {"cpu": _cpu(), "python": platform.python_version(),
                    "load_average_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "speech": {}, "non_speech": {}}
    corpora = {"ravdess": args.ravdess, "tess": args.tess}
    if not any(corpora.values()):
        corpora = {"fixture (tests/fixtures/ravdess)": ROOT / "tests" / "fixtures" / "ravdess"}
    for name, folder in corpora.items():
        if folder is None:
            continue
        files = corpus_files("ravdess" if "ravdess" in name else name, folder)[: args.limit or None]
        if not files:
            raise SystemExit(f"error: no audio files in {folder}")
        new, old, costs, seconds, refused = [], [], [], [], []
        for path in files:
            wave = ser.load_audio(path, RATE)
            accepted, cost = detector_accepts(wave)
            new.append(accepted)
            old.append(energy_gate_accepts(wave))
            costs.append(cost)
            seconds.append(len(wave) / RATE)
            if not accepted:
                refused.append(shown(path))
        results["speech"][name] = {"folder": shown(folder), **summary(new, costs, seconds),
                                   "false_reject_rate": 1 - float(np.mean(new)), "refused": refused,
                                   "energy_gate_false_reject_rate": 1 - float(np.mean(old))}
        print(f"{name}: {len(files)} clips, {len(refused)} refused", file=sys.stderr)
    kinds: dict[str, dict] = {}
    for item in non_speech_set():
        wave = ser.load_audio(item["audio"], RATE, source_rate=item["rate"])
        accepted, cost = detector_accepts(wave)
        kind = kinds.setdefault(item["kind"], {"new": [], "old": [], "costs": [], "seconds": [], "accepted": [],
                                               "energy_gate_accepted": []})
        kind["new"].append(accepted)
        kind["old"].append(energy_gate_accepts(wave))
        kind["costs"].append(cost)
        kind["seconds"].append(len(wave) / RATE)
        if accepted:
            kind["accepted"].append(item["name"])
        if kind["old"][-1]:
            kind["energy_gate_accepted"].append(item["name"])
    for name, kind in kinds.items():
        results["non_speech"][name] = {**summary(kind["new"], kind["costs"], kind["seconds"]),
                                       "false_accept_rate": float(np.mean(kind["new"])),
                                       "energy_gate_false_accept_rate": float(np.mean(kind["old"])),
                                       "accepted_items": kind["accepted"],
                                       "energy_gate_accepted_items": kind["energy_gate_accepted"]}
    all_new = [a for kind in kinds.values() for a in kind["new"]]
    all_old = [a for kind in kinds.values() for a in kind["old"]]
    speech = results["speech"].values()
    results["totals"] = {
        "speech_clips": sum(s["clips"] for s in speech),
        "false_reject_rate": sum(s["rejected"] for s in speech) / max(1, sum(s["clips"] for s in speech)),
        "energy_gate_false_reject_rate": (sum(s["energy_gate_false_reject_rate"] * s["clips"] for s in speech)
                                          / max(1, sum(s["clips"] for s in speech))),
        "non_speech_clips": len(all_new), "false_accept_rate": float(np.mean(all_new)),
        "energy_gate_false_accept_rate": float(np.mean(all_old))}
    results["machine"]["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return results


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _pct(rate: float) -> str:
    return f"{100 * rate:.2f} %"


def markdown(results: dict) -> str:
    totals, detector, machine = results["totals"], results["detector"], results["machine"]
    lines = [
        "# Speech detector", "",
        f"Produced by `{results['command']}`. Detector: {detector['name']} ({detector['package']}, "
        f"`{detector['model']}`, {detector['runtime']}); a 32 ms frame is speech at probability >= "
        f"{detector['threshold']}, and a clip needs {detector['min_speech_seconds']} s of speech frames. "
        f"Machine: {machine['cpu']}; load average {machine['load_average_start']:.1f} at the start "
        "(timings are approximate when it is above 0).", "",
        "| | this detector | the earlier energy gate | goal |", "| --- | ---: | ---: | ---: |",
        f"| false rejects, speech ({totals['speech_clips']} clips) | **{_pct(totals['false_reject_rate'])}** | "
        f"{_pct(totals['energy_gate_false_reject_rate'])} | <= {_pct(GOAL_FALSE_REJECTS)} |",
        f"| false accepts, generated non-speech ({totals['non_speech_clips']} clips) | "
        f"**{_pct(totals['false_accept_rate'])}** | {_pct(totals['energy_gate_false_accept_rate'])} | "
        f"<= {_pct(GOAL_FALSE_ACCEPTS)} |", "",
        "## Speech: false rejects", "",
        "| corpus | clips | refused | false rejects | energy gate | detector ms per clip, median / p95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, corpus in results["speech"].items():
        lines.append(f"| {name} | {corpus['clips']} | {corpus['rejected']} | {_pct(corpus['false_reject_rate'])} | "
                     f"{_pct(corpus['energy_gate_false_reject_rate'])} | {corpus['detector_ms_median']:.2f} / "
                     f"{corpus['detector_ms_p95']:.2f} |")
    refused = [path for corpus in results["speech"].values() for path in corpus["refused"]]
    if refused:
        lines += ["", "Refused: " + ", ".join(f"`{Path(p).name}`" for p in refused[:20])
                  + (f" and {len(refused) - 20} more" if len(refused) > 20 else "") + "."]
    lines += [
        "", "## Generated non-speech: false accepts", "",
        "| kind | clips | accepted | false accepts | energy gate | detector ms per clip, median |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, kind in results["non_speech"].items():
        lines.append(f"| {name} | {kind['clips']} | {kind['accepted']} | {_pct(kind['false_accept_rate'])} | "
                     f"{_pct(kind['energy_gate_false_accept_rate'])} | {kind['detector_ms_median']:.2f} |")
    accepted = [f"{name}: {item}" for name, kind in results["non_speech"].items() for item in kind["accepted_items"]]
    if accepted:
        lines += ["", "Accepted: " + "; ".join(accepted) + "."]
    lines += ["", "## Goals (reported, not enforced)", ""]
    checks = [(f"false rejects <= {_pct(GOAL_FALSE_REJECTS)} over all {totals['speech_clips']} speech clips: "
               f"{_pct(totals['false_reject_rate'])}", totals["false_reject_rate"] <= GOAL_FALSE_REJECTS)]
    checks += [(f"false rejects <= {_pct(GOAL_FALSE_REJECTS)} on {name} alone: {_pct(corpus['false_reject_rate'])}",
                corpus["false_reject_rate"] <= GOAL_FALSE_REJECTS) for name, corpus in results["speech"].items()]
    checks.append((f"false accepts <= {_pct(GOAL_FALSE_ACCEPTS)}: {_pct(totals['false_accept_rate'])}",
                   totals["false_accept_rate"] <= GOAL_FALSE_ACCEPTS))
    lines += [f"- {'met' if met else '**not met**'}: {text}" for text, met in checks]
    lines += [
        "", "The non-speech clips are 3 s long and made by `bench.vad.non_speech_set` with fixed seeds. "
        "Cost: `ser.vad.require_speech` on the loaded clip, 1 thread. It stops once it has found 0.2 s of speech, so "
        "an accepted clip usually costs less than a refused one, which is scanned to the end.", "",
    ]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.vad", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ravdess", type=Path, help="RAVDESS speech folder (Actor_XX/...)")
    parser.add_argument("--tess", type=Path, help="TESS folder (one folder per speaker and emotion)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many clips per corpus (0: all)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    results = run(args)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output / "README.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
