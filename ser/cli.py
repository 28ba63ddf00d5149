"""`python -m ser`: predict emotions from audio files, from the command line.

    python -m ser predict clip.wav other.mp3
    python -m ser predict recordings/ --batch-size 32 --output results.csv
    python -m ser predict talk.flac --timeline
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import logging
import sys
from pathlib import Path

from .audio import AudioError
from .inference import DEFAULT_MODEL, EmotionRecognizer, ModelLoadError

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".mp4", ".webm", ".aac", ".wma", ".aiff", ".aif"}
log = logging.getLogger("ser")


def expand(inputs: list[str]) -> list[str]:
    """Files as given; folders searched recursively for audio files; glob patterns expanded."""
    paths = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths += sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        elif any(c in item for c in "*?[") and not path.exists():
            paths += sorted(glob.glob(item, recursive=True))
        else:
            paths.append(item)
    return paths


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ser", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="print the most likely emotions of audio files")
    predict.add_argument("inputs", nargs="+", help="audio files, folders or glob patterns")
    predict.add_argument("--model", default=DEFAULT_MODEL, help="checkpoint folder or Hub id (default: embedded)")
    predict.add_argument("--top-k", type=int, default=3, help="emotions to print per file")
    predict.add_argument("--batch-size", type=int, default=32)
    predict.add_argument("--device", default="cpu", help="where the model runs: cpu (default), cuda, cuda:1, mps")
    predict.add_argument("--output", type=Path, help="write all scores to a .csv or .jsonl file")
    predict.add_argument("--timeline", action="store_true", help="print one prediction per window of long audio")
    export = commands.add_parser("export", help="export a checkpoint to ONNX (waveform in, logits out)")
    export.add_argument("model", nargs="?", default=DEFAULT_MODEL, help="checkpoint folder or Hub id")
    export.add_argument("--onnx", type=Path, required=True, help="output .onnx file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(format="%(message)s", level=logging.INFO)
    args = parse_args(argv)
    try:
        if args.command == "export":
            from .export import export_onnx

            difference = export_onnx(args.model, args.onnx)
            print(f"wrote {args.onnx} (max probability difference vs PyTorch: {difference:.2e})")
            return 0
        return predict(args)
    except (ModelLoadError, AudioError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def predict(args) -> int:
    try:
        recognizer = EmotionRecognizer(args.model, device=args.device)
    except ValueError as error:  # a device this machine lacks
        print(f"error: {error}", file=sys.stderr)
        return 2
    paths = expand(args.inputs)
    if not paths:
        print("error: no audio files found in " + " ".join(args.inputs), file=sys.stderr)
        return 2
    if args.timeline:
        failed = 0
        for path in paths:
            try:
                timeline = recognizer.timeline(path)
            except AudioError as error:
                print(f"error: {path}: {error}", file=sys.stderr)
                failed += 1
                continue
            print(path)
            for s in timeline.segments:
                print(f"  {s.start:7.2f}-{s.end:7.2f}s  {s.label:<10} {s.scores[s.label]:.2f}")
            print("  overall: " + _top(timeline.overall, args.top_k)
                  + ("" if recognizer.sure(timeline.overall) else NOT_SURE))
        return 1 if failed else 0

    writer = _Writer(args.output, recognizer.labels, recognizer) if args.output else None
    results = recognizer.predict_many(paths, batch_size=args.batch_size)
    if writer:
        from tqdm import tqdm

        results = tqdm(results, total=len(paths), unit="file", file=sys.stderr)
    failed = 0
    for path, result in results:
        if isinstance(result, Exception):
            failed += 1
            message = f"{path}: {result}" if str(path) not in str(result) else str(result)
            (log.warning("skipped " + message) if writer else print(f"error: {message}", file=sys.stderr))
        elif writer:
            writer.write(path, result)
        else:
            print(f"{path}: {_top(result, args.top_k)}" + ("" if recognizer.sure(result) else NOT_SURE))
    if writer:
        writer.close()
        print(f"wrote {len(paths) - failed} predictions to {args.output}" + (f"; skipped {failed}" if failed else ""),
              file=sys.stderr)
    return 1 if failed else 0


NOT_SURE = "  (not sure: the top probability is below the model's confidence threshold)"


def _top(scores: dict[str, float], k: int) -> str:
    return "  ".join(f"{label} {p:.2f}" for label, p in list(scores.items())[:k])


class _Writer:
    """Rows of path, top label, whether the model is sure of it, and every class probability, as CSV or JSON lines."""

    def __init__(self, path: Path, labels: list[str], recognizer):
        self.jsonl = path.suffix.lower() in (".jsonl", ".json")
        self.file = open(path, "w", newline="")
        self.labels = labels
        self.recognizer = recognizer
        if not self.jsonl:
            self.csv = csv.writer(self.file)
            self.csv.writerow(["path", "label", "sure", *labels])

    def write(self, path: str, scores: dict[str, float]):
        label = next(iter(scores))
        if self.jsonl:
            self.file.write(json.dumps({"path": str(path), "label": label, "sure": self.recognizer.sure(scores),
                                        "scores": scores}) + "\n")
        else:
            self.csv.writerow([path, label, self.recognizer.sure(scores),
                               *(f"{scores[name]:.6f}" for name in self.labels)])

    def close(self):
        self.file.close()
