"""Long audio: wall time and peak memory of `EmotionRecognizer.timeline` on 1, 10 and 60-minute files.

    python -m bench.long_audio                     # 1, 10 and 60 minutes
    python -m bench.long_audio --minutes 1 10      # a quicker check

Each file is the 32 fixture clips (tests/fixtures/ravdess) back to back, looped to the length, at 48 kHz
(FLAC by default, `--format wav` for uncompressed). Every length runs in a fresh Python
process that loads the model, scores one short clip (so every library and buffer is in place: the baseline),
then runs the timeline on the long file. Reported per length: the child's wall time, the time of the timeline
call alone, its peak resident memory (the child's own `ru_maxrss`), the baseline after the short clip, and the
growth between the two, which is what the recording's length costs (the baseline is mostly the torch, FFmpeg
and transformers libraries).

Writes long_audio.json and long_audio.md to --output. Timings are only meaningful on an otherwise idle
machine: the load average at the start and the end is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "ravdess"
DEFAULT_OUTPUT = ROOT / "bench" / "results"
RATE = 48000

CHILD = """
import json, resource, sys, time
import torch
import ser
model, short, long, threads = sys.argv[1:5]
if int(threads):
    torch.set_num_threads(int(threads))
recognizer = ser.EmotionRecognizer(model)
recognizer.timeline(short)
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
timeline = recognizer.timeline(long)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"timeline_s": seconds, "baseline_mb": baseline, "peak_mb": peak, "segments": len(timeline.segments),
                  "duration_s": timeline.duration, "threads": torch.get_num_threads(),
                  "overall": next(iter(timeline.overall))}))
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.long_audio", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60], help="lengths (default: 1 10 60)")
    parser.add_argument("--model", help="checkpoint folder (default: the embedded model; random weights if missing)")
    parser.add_argument("--format", choices=["flac", "wav"], default="flac", help="file format (default: flac)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads in the child (default: torch's own)")
    parser.add_argument("--workdir", type=Path, help="where to write the long files (default: a temporary folder)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="folder for long_audio.json and .md")
    return parser.parse_args(argv)


def make_recording(minutes: float, folder: Path, fmt: str) -> Path:
    """The fixture clips back to back, looped to `minutes`, at 48 kHz mono, made by ffmpeg."""
    listing = folder / "clips.txt"
    listing.write_text("".join(f"file '{clip}'\n" for clip in sorted(FIXTURE.glob("Actor_*/*.flac"))))
    path = folder / f"{minutes:g}min.{fmt}"
    if not path.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
                        "-stream_loop", "-1", "-i", str(listing), "-t", str(minutes * 60), "-ar", str(RATE), "-ac", "1",
                        *(["-c:a", "flac"] if fmt == "flac" else ["-c:a", "pcm_s16le"]), str(path)], check=True)
    return path


def run_child(model: str, short: Path, long: Path, threads: int) -> dict:
    """Run the timeline in a fresh process, which reports its own peak memory when it is done."""
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", CHILD, model, str(short), str(long), str(threads)], cwd=ROOT,
                           capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(f"the timeline failed on {long}:\n{child.stderr[-3000:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def default_model(workdir: Path) -> tuple[str, str]:
    import ser

    if (Path(ser.DEFAULT_MODEL) / "config.json").is_file():
        return ser.DEFAULT_MODEL, "embedded model"
    path = workdir / "random_checkpoint"
    config = ser.SERConfig()
    ser.SERForAudioClassification(config).save_pretrained(path)
    ser.new_feature_extractor(config).save_pretrained(path)
    return str(path), "random weights (the embedded model was missing; same architecture, same compute)"


def write_report(results: dict, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "long_audio.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = results["runs"]
    minutes = " ".join(f"{r['minutes']:g}" for r in rows)
    lines = [
        "# Long audio: timeline time and peak memory",
        "",
        f"`python -m bench.long_audio --minutes {minutes}` on {results['machine']}, "
        f"{results['date']}; model: {results['model_note']}; {results['format'].upper()} files at {RATE // 1000} kHz "
        f"mono; torch threads: {rows[0]['threads'] if rows else '?'}; load average {results['load_before']:.1f} "
        f"before, {results['load_after']:.1f} after.",
        "",
        "| length | file | timeline | per audio minute | process wall | peak RSS | baseline RSS | growth | segments |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['minutes']:g} min | {r['file_mb']:.0f} MB | {r['timeline_s']:.1f} s | "
                     f"{r['timeline_s'] / r['minutes']:.2f} s | {r['wall_s']:.1f} s | {r['peak_mb']:.0f} MB | "
                     f"{r['baseline_mb']:.0f} MB | {r['peak_mb'] - r['baseline_mb']:+.0f} MB | {r['segments']} |")
    lines += [
        "",
        "Peak RSS is the child process's `ru_maxrss`. The baseline is the same process after loading the model and "
        "scoring one 4 s clip, before the long file: it is the libraries (torch with its CUDA libraries mapped, "
        "FFmpeg, transformers), not the audio. The growth is what scoring costs on top: mostly one batch of 32 "
        "windows through the network, plus one 30 s piece of decoded audio; the file "
        "is decoded piece by piece, so neither depends on the recording's length. Time per audio minute should "
        "stay flat as the length grows (linear time).",
    ]
    if results["load_before"] > 1.0 or results["load_after"] > 1.0:
        lines += ["", f"**Note:** the load average was high ({results['load_before']:.1f} before, "
                      f"{results['load_after']:.1f} after): other work shared the CPU, so the times are upper bounds."]
    (output / "long_audio.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="long_audio_") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        model, note = (args.model, args.model) if args.model else default_model(workdir)
        short = sorted(FIXTURE.glob("Actor_*/*.flac"))[0]
        load_before = os.getloadavg()[0]
        runs = []
        for minutes in sorted(args.minutes):
            path = make_recording(minutes, workdir, args.format)
            print(f"{minutes:g} min ({path.stat().st_size / 1e6:.0f} MB): running the timeline...", file=sys.stderr)
            result = run_child(model, short, path, args.threads)
            result.update(minutes=minutes, file_mb=path.stat().st_size / 1e6)
            runs.append(result)
            print(f"  timeline {result['timeline_s']:.1f} s, peak RSS {result['peak_mb']:.0f} MB "
                  f"(baseline {result['baseline_mb']:.0f} MB), {result['segments']} segments", file=sys.stderr)
        results = {"runs": runs, "model": model, "model_note": note, "format": args.format,
                   "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                   "date": time.strftime("%Y-%m-%d"), "load_before": load_before, "load_after": os.getloadavg()[0]}
        write_report(results, args.output)
    print(f"wrote {args.output / 'long_audio.json'} and {args.output / 'long_audio.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
