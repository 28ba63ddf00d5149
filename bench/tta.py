"""Test-time speed averaging (`SERConfig.test_time_speeds`, opt-in) on the EmoBox fold models.

    python -m bench.tta --data ../shared/data/ravdess                          # the default's fold models
    python -m bench.tta --data DIR --folds bench/results/accuracy/SYSTEM_emobox --speeds 0.9 1.1

Scores each fold model (`DIR/foldN/model`, as `python -m bench.accuracy --only default --protocols emobox` leaves
them) on the clips of its test actors (from the fold's metrics.json), through `ser.EmotionRecognizer.probabilities`
as users' predictions go: once in one pass (`test_time_speeds = []`) and once with the checkpoint's
`test_time_speeds` set to `--speeds`, so the averaging measured is the model's own. Reports UA, WA and macro-F1
per fold and their mean and standard deviation over the folds, and writes `DIR/tta.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench import ROOT, run_actors, shown

DEFAULT_FOLDS = ROOT / "bench" / "results" / "accuracy" / "default_emobox"
SPEEDS = [0.9, 1.1]
MEASURES = ("unweighted_accuracy", "accuracy", "macro_f1")


def label(speeds: list[float]) -> str:
    """The name of the averaging in tta.json, e.g. "speed 0.9x / 1.1x"."""
    return "speed " + " / ".join(f"{speed:g}x" for speed in speeds)


def load(model_dir: Path):
    """The checkpoint as a recognizer of RAVDESS's 8 emotions in order."""
    import ser

    if not model_dir.is_dir():
        raise SystemExit(f"{model_dir} is missing; train the fold models with `python -m bench.accuracy --only "
                         "default --protocols emobox` (keeping their model/ folders) or pass --folds")
    recognizer = ser.EmotionRecognizer(str(model_dir))
    if recognizer.labels != list(ser.RAVDESS_EMOTIONS):
        raise SystemExit(f"{model_dir} does not predict RAVDESS's 8 emotions in order")
    return recognizer


def probabilities(recognizer, waves: list[np.ndarray], speeds: list[float], batch_size: int = 32) -> np.ndarray:
    """Class probabilities of `waves` with the model's `test_time_speeds` set to `speeds` ([]: one pass)."""
    recognizer.model.config.test_time_speeds = list(speeds)
    return np.concatenate([recognizer.probabilities(waves[i: i + batch_size])
                           for i in range(0, len(waves), batch_size)])


def score_folds(folds: Path, speeds: list[float], waves, labels: np.ndarray, actors: np.ndarray,
                fold_numbers=range(1, 7)) -> dict:
    """UA, WA and macro-F1 of each fold model on its test actors, in one pass and averaged over `speeds`."""
    import evaluate

    from train.train import METRICS_MODULE

    metric = evaluate.load(METRICS_MODULE)
    averaged = label(speeds)
    result = {"candidate": averaged, "test_time_speeds": list(speeds), "folds": {}}
    for fold in fold_numbers:
        recognizer = load(folds / f"fold{fold}" / "model")
        test_actors = run_actors(json.loads((folds / f"fold{fold}" / "metrics.json").read_text()))["test"]
        rows = np.flatnonzero(np.isin(actors, test_actors))
        clips = [np.asarray(waves[i], dtype=np.float32) for i in rows]
        result["folds"][str(fold)] = {"test": {}}
        for name, setting in (("one pass", []), (averaged, speeds)):
            scores = metric.compute(predictions=probabilities(recognizer, clips, setting).argmax(-1),
                                    references=labels[rows], num_labels=len(recognizer.labels))
            result["folds"][str(fold)]["test"][name] = {m: scores[m] for m in MEASURES}
        print(fold, result["folds"][str(fold)]["test"], flush=True)
    for name in ("one pass", averaged):
        result[f"test: {name}"] = {}
        for measure in MEASURES:
            values = [f["test"][name][measure] for f in result["folds"].values()]
            result[f"test: {name}"][measure] = {"mean": float(np.mean(values)),
                                                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
        ua = result[f"test: {name}"]["unweighted_accuracy"]
        print(f"test, {name}: UA {100 * ua['mean']:.1f} % ± {100 * ua['std']:.1f}")
    (folds / "tta.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.tta", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="RAVDESS source, as for `python -m train --data`")
    parser.add_argument("--folds", type=Path, default=DEFAULT_FOLDS,
                        help=f"a bench.accuracy emobox run with fold1/model ... fold6/model (default: "
                             f"{shown(DEFAULT_FOLDS)})")
    parser.add_argument("--speeds", type=float, nargs="+", default=SPEEDS, metavar="SPEED",
                        help="the test_time_speeds to average over (default: 0.9 1.1)")
    args = parser.parse_args(argv)
    from train import corpora, data

    dataset = corpora.load_ravdess(args.data)
    waves = data.as_arrays(dataset)["input_values"]
    return score_folds(args.folds, args.speeds, waves, np.asarray(dataset["emotion"]), np.asarray(dataset["actor"]))


if __name__ == "__main__":
    main()
