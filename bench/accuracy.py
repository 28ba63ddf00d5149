"""Accuracy benchmark: the default model and two baselines of earlier RAVDESS projects, side by side.

    python -m bench.accuracy --data ../shared/data/ravdess            # everything (hours on a laptop CPU)
    python -m bench.accuracy --data DIR --only default rf             # a subset; finished parts are reused

Systems, each under the speaker-independent `emobox` protocol (6 actor-disjoint folds) and, for comparison with
earlier projects, the speaker-DEPENDENT `random` protocol (5 seeds of an 80/20 stratified clip split):
- `default`: the RAVDESS-only recipe, the embedded default before the multi-corpus model: `python -m train
  --features logmel` (40 log-mel bands, no deltas);
- `cnn1d`: a 1-D CNN over 40 time-averaged MFCCs, the design most earlier projects used;
- `rf`: a Random Forest on MFCC + chroma + spectral-contrast statistics (scikit-learn).

Results go to `bench/results/accuracy/<system>_<protocol>/` (summary.json, summary.md, confusion_matrix.png, and
per-run metrics) and a combined `bench/results/accuracy/README.md` table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "accuracy"

# The 1-D CNN baseline, spelled out in full so that a change of the defaults does not change it: 40 MFCCs without
# deltas, averaged over 4 s windows, no SpecAugment, silence trimming or loudness normalization.
CNN1D_MODEL = {"features": "mfcc", "n_mfcc": 40, "n_mels": 64, "deltas": False, "channels": [64, 128, 128],
               "num_masks": 2, "encoder": "cnn1d", "spec_augment": False, "trim_silence_db": None,
               "normalize_loudness": False, "window_seconds": 4.0}
# name -> extra `python -m train` arguments
SYSTEMS = {
    "default": ["--features", "logmel"],
    # 40 epochs on clean (not degraded) audio, 2 actors of each fold held out as validation, the last epoch kept.
    "cnn1d": ["--epochs", "40", "--no-augment", "degrade", "--workers", "1", "--validation-actors", "2",
              "--average-last-epochs", "0", "--model-config", json.dumps(CNN1D_MODEL)],
}
PROTOCOLS = {"emobox": ["--protocol", "emobox", "--fold", "all"],
             "random": ["--protocol", "random", "--seeds", "0", "1", "2", "3", "4"]}


def run_network(system: str, protocol: str, data: str, output: Path, resume: bool = True) -> dict:
    from train.cli import main as train

    # The fold models stay (git ignores them): `bench.robustness` evaluates them. With `resume`, folds that an
    # interrupted run already finished with the same recipe are kept: a 6-fold run outlasts many sessions.
    train(["--data", data, *PROTOCOLS[protocol], *SYSTEMS[system], "--output-dir", str(output),
           *["--resume"] * resume])
    return json.loads((output / "summary.json").read_text())


def pooled_features(wave: np.ndarray, rate: int = 16000) -> np.ndarray:
    """MFCC (40), chroma (12) and spectral contrast (7), each averaged over time, as the RF projects did."""
    import librosa

    mfcc = librosa.feature.mfcc(y=wave, sr=rate, n_mfcc=40)
    stft = np.abs(librosa.stft(wave))
    chroma = librosa.feature.chroma_stft(S=stft, sr=rate)
    contrast = librosa.feature.spectral_contrast(S=stft, sr=rate)
    return np.concatenate([mfcc.mean(1), chroma.mean(1), contrast.mean(1)])


def run_forest(protocol: str, data: str, output: Path) -> dict:
    import evaluate
    from sklearn.ensemble import RandomForestClassifier

    from ser import RAVDESS_EMOTIONS
    from train import cli, corpora, data as ravdess
    from train.train import METRICS_MODULE

    dataset = corpora.load_ravdess(data)
    features = np.stack([pooled_features(w) for w in ravdess.as_arrays(dataset)["input_values"]])
    labels = np.asarray(dataset["emotion"])
    metric = evaluate.load(METRICS_MODULE)
    jobs = ([(f"fold{f}", f, 0) for f in ravdess.EMOBOX_FOLDS] if protocol == "emobox"
            else [(f"seed{s}", None, s) for s in range(5)])
    runs = {}
    for name, fold, seed in jobs:
        started = time.time()
        index = np.arange(len(dataset))
        # 2 validation actors, trained on too: the split, and so the order of the rows, of the committed runs.
        splits = ravdess.split_dataset(dataset.add_column("row", index), protocol, fold=fold, seed=seed,
                                       validation_actors=2)
        train_rows = np.concatenate([splits["train"]["row"], splits["validation"]["row"]])
        test_rows = np.asarray(splits["test"]["row"])
        forest = RandomForestClassifier(n_estimators=500, random_state=seed, n_jobs=-1)
        forest.fit(features[train_rows], labels[train_rows])
        result = metric.compute(predictions=forest.predict(features[test_rows]), references=labels[test_rows],
                                num_labels=len(RAVDESS_EMOTIONS))
        runs[name] = {**result, "labels": list(RAVDESS_EMOTIONS), "parameters": 0,
                      "train_seconds": round(time.time() - started, 1)}
    output.mkdir(parents=True, exist_ok=True)
    return cli.summarize(runs, output, protocol)


def table(results: dict[str, dict]) -> str:
    rows = ["| system | protocol | UA (mean ± std) | WA | macro-F1 | parameters | train time |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in sorted(results.items()):
        system, protocol = name.rsplit("_", 1)
        label = "emobox (6 actor-disjoint folds)" if protocol == "emobox" else "random 80/20, 5 seeds (speaker-dependent)"
        ua, wa, f1 = (s[k] for k in ("unweighted_accuracy", "accuracy", "macro_f1"))
        params = f"{s['parameters']:,}" if s["parameters"] else "500 trees"
        rows.append(f"| {system} | {label} | {ua['mean']:.1%} ± {ua['std']:.1%} | {wa['mean']:.1%} | {f1['mean']:.1%} "
                    f"| {params} | {s['train_seconds'] / 60:.0f} min |")
    return "\n".join(rows) + "\n"


def write_readme(output: Path = RESULTS) -> str:
    """The combined table of every `<system>_<protocol>/summary.json` under `output`, written to its README.md."""
    results = {p.parent.name: json.loads(p.read_text()) for p in sorted(output.glob("*/summary.json"))}
    text = table(results)
    (output / "README.md").write_text(
        "# Accuracy on RAVDESS (8 classes)\n\nProduced by `python -m bench.accuracy`. UA = unweighted accuracy (mean "
        "per-class recall), the headline; WA = accuracy.\n\nA run repeats bit for bit on the kind of CPU that "
        "trained it. Another CPU family rounds floats differently, and the epochs amplify that as another seed "
        "would: there a row reproduces within run-to-run noise (`../accuracy_rerun` has the `default` row rerun on "
        "another CPU). Each fold's `metrics.json`, and a system's `summary.md`, name the CPU where it is "
        "recorded.\n\nSystems: `default` is `python -m train` without options (the shipped model and recipe); "
        "`cnn1d` a 1-D CNN over 40 time-averaged MFCCs and `rf` a Random Forest on MFCC, chroma and "
        "spectral-contrast statistics, the designs of earlier RAVDESS projects (see `bench/accuracy.py`). A "
        "system's `random` row is missing until that run is made.\n\n" + text)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="RAVDESS source, as for `python -m train --data`")
    parser.add_argument("--only", nargs="+", choices=[*SYSTEMS, "rf"], default=[*SYSTEMS, "rf"])
    parser.add_argument("--protocols", nargs="+", choices=list(PROTOCOLS), default=list(PROTOCOLS))
    parser.add_argument("--rerun", action="store_true",
                        help="run again even where results exist (otherwise a system's finished summary, and the "
                             "finished folds or seeds of an interrupted run, are kept)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for system in args.only:
        for protocol in args.protocols:
            output = args.output / f"{system}_{protocol}"
            if (output / "summary.json").exists() and not args.rerun:
                print(f"== {system} / {protocol}: reusing {output / 'summary.json'}")
                continue
            print(f"== {system} / {protocol}", flush=True)
            if system == "rf":
                run_forest(protocol, args.data, output)
            else:
                run_network(system, protocol, args.data, output, resume=not args.rerun)
    print(write_readme(args.output))


if __name__ == "__main__":
    main()
