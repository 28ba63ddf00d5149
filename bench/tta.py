"""Test-time augmentation screen: does averaging a clip's prediction over altered copies of it help?

    python -m bench.tta --data ../shared/data/ravdess
    python -m bench.tta --data ../shared/data/ravdess --folds bench/results/accuracy/mfcc_emobox --candidate "speed 0.9x / 1.1x"

Scores the 5 models of one `bench.ablation` full-training-path row (default: the 1.5x row, the MFCC default
recipe; run `python -m bench.ablation --sets 5 --only "<row>"` first) on their own validation actors (20 actors
in all; fold 1's test actors are never loaded), clean, through `ser.EmotionRecognizer.probabilities`. Each candidate
averages the class probabilities of the clip as it is and two altered copies (the rule for judging them is in
`bench/results/ablation/PREREGISTRATION.md`). Writes `bench/results/ablation/tta.json` and `tta.md`.

With `--folds DIR` it scores instead the 6 fold models of a `bench.accuracy` run (`DIR/foldN/model`) with one
`--candidate`, on each fold's validation actors (for the adoption rule) and test actors (the published figure), and
writes `DIR/tta.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from bench.ablation import RESULTS, TRAINER_RUNS, TRAINER_VARIANTS, slug, unweighted_accuracy, validation_splits

RATE = 16000
DEFAULT_ROW = "full training path: channels 24, 48, 96, 192 (1.5x; the MFCC default, 2026-11-26)"


def speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Played `factor` times as fast: tempo and pitch move together (resampling)."""
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(wave), int(round(RATE * factor)), RATE).numpy()


def pitch(wave: np.ndarray, semitones: float) -> np.ndarray:
    import audiomentations as A

    return A.PitchShift(min_semitones=semitones, max_semitones=semitones, method="signalsmith_stretch",
                        p=1.0)(wave, sample_rate=RATE)


def tempo(wave: np.ndarray, rate: float) -> np.ndarray:
    import audiomentations as A

    return A.TimeStretch(min_rate=rate, max_rate=rate, leave_length_unchanged=False, method="signalsmith_stretch",
                         p=1.0)(wave, sample_rate=RATE)


# name -> the altered copies averaged with the clip as it is
CANDIDATES = {
    "speed 0.9x / 1.1x": [lambda w: speed(w, 0.9), lambda w: speed(w, 1.1)],
    "pitch -1 / +1 semitone": [lambda w: pitch(w, -1.0), lambda w: pitch(w, 1.0)],
    "tempo 0.9x / 1.1x": [lambda w: tempo(w, 0.9), lambda w: tempo(w, 1.1)],
}


def probabilities(recognizer, waves: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
    return np.concatenate([recognizer.probabilities(waves[i: i + batch_size]) for i in range(0, len(waves), batch_size)])


def load(model_dir: Path):
    """The checkpoint as a recognizer that predicts in one pass (the candidates are applied here, not by its
    config's `test_time_speeds`)."""
    import ser

    if not model_dir.is_dir():
        raise SystemExit(f"{model_dir} is missing")
    recognizer = ser.EmotionRecognizer(str(model_dir))
    if recognizer.labels != list(ser.RAVDESS_EMOTIONS):
        raise SystemExit(f"{model_dir} does not predict RAVDESS's 8 emotions in order")
    recognizer.model.config.test_time_speeds = []
    return recognizer


def score_folds(folds: Path, candidate: str, waves, labels: np.ndarray, actors: np.ndarray) -> dict:
    """UA, WA and macro-F1 of each fold model on its validation and test actors, one pass and with `candidate`."""
    import evaluate

    from train.train import METRICS_MODULE

    metric = evaluate.load(METRICS_MODULE)
    measures = ("unweighted_accuracy", "accuracy", "macro_f1")
    result = {"candidate": candidate, "folds": {}}
    for fold in range(1, 7):
        recognizer = load(folds / f"fold{fold}" / "model")
        split_actors = json.loads((folds / f"fold{fold}" / "metrics.json").read_text())["actors"]
        result["folds"][fold] = {}
        # Fold models trained on every non-test actor (the default since 2026-11-27) have no validation actors.
        for split in [split for split in ("validation", "test") if split in split_actors]:
            rows = np.flatnonzero(np.isin(actors, split_actors[split]))
            clips = [np.asarray(waves[i], dtype=np.float32) for i in rows]
            base = probabilities(recognizer, clips)
            total = base + sum(probabilities(recognizer, [alter(c).astype(np.float32) for c in clips])
                               for alter in CANDIDATES[candidate])
            result["folds"][fold][split] = {}
            for name, probs in (("one pass", base), (candidate, total)):
                scores = metric.compute(predictions=probs.argmax(-1), references=labels[rows], num_labels=8)
                result["folds"][fold][split][name] = {m: scores[m] for m in measures}
        print(fold, result["folds"][fold], flush=True)
    for split in [split for split in ("validation", "test") if all(split in f for f in result["folds"].values())]:
        for name in ("one pass", candidate):
            result[f"{split}: {name}"] = {}
            for measure in measures:
                values = [result["folds"][f][split][name][measure] for f in range(1, 7)]
                result[f"{split}: {name}"][measure] = {"mean": float(np.mean(values)),
                                                       "std": float(np.std(values, ddof=1))}
            ua = result[f"{split}: {name}"]["unweighted_accuracy"]
            print(f"{split}, {name}: UA {100 * ua['mean']:.1f} % ± {100 * ua['std']:.1f}")
    (folds / "tta.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.tta", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="RAVDESS source, as for `python -m train --data`")
    parser.add_argument("--row", default=DEFAULT_ROW, choices=list(TRAINER_VARIANTS),
                        help="the bench.ablation row whose 5 models are scored")
    parser.add_argument("--folds", type=Path, default=None, help="score the fold models of this bench.accuracy run")
    parser.add_argument("--candidate", choices=list(CANDIDATES), help="with --folds: the candidate to score")
    args = parser.parse_args(argv)
    if args.folds and not args.candidate:
        parser.error("--folds needs --candidate")
    from train import data

    dataset = data.load_ravdess(args.data)
    waves = data.as_arrays(dataset)["input_values"]
    labels, actors = np.asarray(dataset["emotion"]), np.asarray(dataset["actor"])
    if args.folds:
        return score_folds(args.folds, args.candidate, waves, labels, actors)
    scores = {"one pass (baseline)": [], **{name: [] for name in CANDIDATES}}
    for split, (_, val_rows) in enumerate(validation_splits(actors)):
        recognizer = load(TRAINER_RUNS / slug(args.row) / f"set{split}" / "model")
        clips = [np.asarray(waves[i], dtype=np.float32) for i in val_rows]
        truth = labels[val_rows]
        base = probabilities(recognizer, clips)
        scores["one pass (baseline)"].append(unweighted_accuracy(base.argmax(-1), truth))
        for name, alterations in CANDIDATES.items():
            total = base + sum(probabilities(recognizer, [alter(c).astype(np.float32) for c in clips])
                               for alter in alterations)
            scores[name].append(unweighted_accuracy(total.argmax(-1), truth))
        print(split, {name: round(100 * s[-1], 1) for name, s in scores.items()}, flush=True)
    baseline = np.array(scores["one pass (baseline)"])
    rows = ["| prediction | mean UA over the 5 sets | per set | sets above the baseline |", "| --- | --- | --- | --- |"]
    for name, values in scores.items():
        values = np.array(values)
        above = "-" if name.startswith("one pass") else f"{int((values > baseline).sum())} of 5"
        rows.append(f"| {name} | {100 * values.mean():.1f}% | {' / '.join(f'{100 * v:.1f}' for v in values)} | "
                    f"{above} |")
    (RESULTS / "tta.json").write_text(json.dumps({"row": args.row, "unweighted_accuracy": scores}, indent=2) + "\n")
    (RESULTS / "tta.md").write_text(
        f"# Test-time augmentation on validation actors\n\nProduced by `python -m bench.tta --data "
        f"../shared/data/ravdess`: the 5 models of the screen row \"{args.row}\", each scored on its own 4 validation "
        "actors (20 in all), clean. Each candidate averages the class probabilities of the clip and two altered "
        "copies. Rule: [PREREGISTRATION.md](PREREGISTRATION.md).\n\n" + "\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
