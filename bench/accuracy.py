"""Accuracy benchmark: the default model and two baselines of earlier RAVDESS projects, side by side.

    python -m bench.accuracy --data ../shared/data/ravdess            # everything (hours on 2 CPU cores)
    python -m bench.accuracy --data DIR --only default rf             # a subset; finished parts are reused

Systems, each under the speaker-independent `emobox` protocol (6 actor-disjoint folds) and, for comparison with
earlier projects, the speaker-DEPENDENT `random` protocol (5 seeds of an 80/20 stratified clip split):
- `default`: the default `SERConfig` and training recipe (`python -m train` without options): log-mel (40 bands)
  at channels (32, 64, 128, 256), one SpecAugment mask of each kind, trained channels-last, on all 20 actors outside
  the test fold, its weights averaged over the last 15 of the 60 epochs; adopted on 2026-11-27 by the rules in
  `bench/results/ablation/PREREGISTRATION.md`, where it ran as `swa15_all`;
- `all_actors`: the default before that (2026-11-27, 05:09 UTC until the averaging): the same, the last epoch kept;
- `masks1`: the default before that (2026-11-27, until 05:09 UTC): `all_actors` with 2 actors of each fold held out
  as validation (18 trained on);
- `logmel40_2x`: the default before that (2026-11-26): `masks1` with two SpecAugment masks of each kind;
- `time_masks`: an accuracy candidate that was not adopted: `masks1` with time masks only, no frequency mask
  (it failed its 6-fold rule on the folds' validation actors);
- `pitch4`: an accuracy candidate that was not adopted: `masks1` with pitch shifts of up to 4 semitones instead of 2
  (it failed its 6-fold rule on the folds' validation actors);
- `no_stretch`: an accuracy candidate that was not adopted: `masks1` without time-stretch augmentation (it failed its
  6-fold rule on the folds' validation actors);
- `dropout0`: an accuracy candidate that was not adopted: `masks1` without dropout (it failed the same rule);
- `swa15`: an accuracy candidate that passed the same rule: `masks1` with its weights averaged over the last 15 of
  the 60 epochs (`--average-last-epochs 15`), BatchNorm statistics refitted; its refit on all 20 actors is `default`;
- `swa15_floor`: an accuracy candidate that was not adopted: `swa15` with the learning rate held at 0.2x its peak
  once the cosine reaches it (`--learning-rate-floor 0.2`), so the averaged epochs train at a constant rate (it
  failed its rule on the folds' validation actors);
- `freq_rows`: an accuracy candidate that was not adopted: `swa15` with the 3 frequency rows left by the CNN stacked
  as channels before the pooling over time, not averaged (`SERConfig(frequency_pooling="flatten")`; it failed its
  rule on the folds' validation actors);
- `freq_masks`: an accuracy candidate that was not adopted: `swa15` with frequency masks only, no time mask
  (`time_mask_param=0`; it failed its rule on the folds' validation actors);
- `masks1_seed1`: not a candidate: `masks1` trained with seed 1 on the same splits (`--split-seed 0`), for the
  run-to-run spread of the figures that judge candidates;
- `mfcc`: the default before that, MFCC+deltas at channels (24, 48, 96, 192), trained contiguous;
- `clean40`: an earlier default recipe, 40 epochs on clean (not degraded) training audio, channels (16, 32, 64, 128);
- `narrow`: the MFCC default before its widening on 2026-11-26, channels (16, 32, 64, 128);
- `babble50`: a robustness candidate that was not adopted: `narrow` with babble on half the training clips (not
  30 %) and its talkers cut to their speech;
- `default_babble50`: a robustness candidate that was not adopted: `mfcc` (the default then) with babble on half the
  training clips, talkers cut to their speech (it passed its screen, then failed its 6-fold rule in
  `bench/results/ablation/PREREGISTRATION.md`);
- `wide2x`: a width candidate that was not adopted: MFCC+deltas at channels (32, 64, 128, 256);
- `logmel`: a robustness candidate that was not adopted: `mfcc` with log-mel (64 bands, no deltas) in place of
  MFCC+deltas (it cut the babble drop, and failed its 6-fold rule on clean UA);
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

from bench import LOGMEL40_2X_MODEL, MASKS1_MODEL, MFCC_MODEL

RESULTS = Path(__file__).parent / "results" / "accuracy"


# The systems measured before 2026-11-27 05:09 UTC, and the candidates judged against `masks1` since, hold 2 actors
# of each fold out of training, as validation.
HELD_OUT = ["--validation-actors", "2"]
# The systems measured before the weight averaging became the default (2026-11-27, `swa15`) kept the last epoch.
LAST_EPOCH = ["--average-last-epochs", "0"]


def mfcc_system(**model) -> list[str]:
    """`python -m train` arguments for the MFCC default (trained contiguous) with these `SERConfig` changes."""
    return ["--model-config", json.dumps({**MFCC_MODEL, **model}), "--no-channels-last", *HELD_OUT, *LAST_EPOCH]


def masks1_system(*options: str, **model) -> list[str]:
    """`python -m train` arguments for `masks1` (the default config, channels-last, 2 validation actors, the last
    epoch kept) with these options (later ones win, so `--validation-actors 0` trains on every actor) and `SERConfig`
    changes."""
    return ["--model-config", json.dumps({**MASKS1_MODEL, **model}), "--channels-last", *HELD_OUT, *LAST_EPOCH,
            *options]


NARROW = mfcc_system(channels=[16, 32, 64, 128])
CLEAN40_RECIPE = ["--epochs", "40", "--no-degrade", "--workers", "1"]
CLEAN40 = [*CLEAN40_RECIPE, *NARROW]
# name -> extra `python -m train` arguments. The earlier systems pin the model config, memory format and validation
# actors they were measured with, so a change of the defaults does not silently change them.
SYSTEMS = {
    "default": [],
    # The default until the weight averaging (2026-11-27, `swa15`): the same config and recipe, the last epoch kept.
    "all_actors": masks1_system("--validation-actors", "0"),
    # The default until 2026-11-27 05:09 UTC: `all_actors` with 2 actors of each fold held out as validation.
    "masks1": masks1_system(),
    "logmel40_2x": ["--model-config", json.dumps(LOGMEL40_2X_MODEL), "--channels-last", *HELD_OUT, *LAST_EPOCH],
    # An accuracy candidate that was not adopted (bench/results/ablation/PREREGISTRATION.md, 2026-11-27): the default
    # (spelled out) with time masks only, no frequency mask.
    "time_masks": masks1_system(freq_mask_param=0),
    # An accuracy candidate that was not adopted (bench/results/ablation/PREREGISTRATION.md, 2026-11-27): the default
    # (spelled out) with pitch shifts of up to 4 semitones instead of 2.
    "pitch4": masks1_system("--pitch-semitones", "4"),
    # An accuracy candidate that was not adopted (bench/results/ablation/PREREGISTRATION.md, 2026-11-27 07:15 UTC):
    # the `masks1` config and recipe without time-stretch augmentation.
    "no_stretch": masks1_system("--no-stretch"),
    # An accuracy candidate that was not adopted (bench/results/ablation/PREREGISTRATION.md, 2026-11-27 07:58 UTC):
    # `masks1` without dropout.
    "dropout0": masks1_system(dropout=0.0),
    # An accuracy candidate that passed its rule (bench/results/ablation/PREREGISTRATION.md, 2026-11-27 10:10 UTC):
    # `masks1` with its weights averaged over the last 15 epochs. Its refit on all 20 actors, which ran as
    # `swa15_all`, is the default.
    "swa15": masks1_system("--average-last-epochs", "15"),
    # An accuracy candidate that was not adopted (bench/results/ablation/PREREGISTRATION.md, 2026-11-27 16:15 UTC):
    # `swa15` with the learning rate held at 0.2 x its peak from where the cosine reaches it (epoch 43) on, so the
    # averaged epochs train at a constant rate.
    "swa15_floor": masks1_system("--average-last-epochs", "15", "--learning-rate-floor", "0.2"),
    # An accuracy candidate that was not adopted (bench/results/ablation/PREREGISTRATION.md, 2026-11-27 18:21 UTC):
    # `swa15` with the CNN's frequency rows stacked as channels before the pooling over time, so the classifier
    # knows which band a pattern sat in.
    "freq_rows": masks1_system("--average-last-epochs", "15", frequency_pooling="flatten"),
    # An accuracy candidate that was not adopted (bench/results/ablation/PREREGISTRATION.md, 2026-11-27 19:19 UTC):
    # `swa15` with frequency masks only, no time mask (the cell of the mask grid that `masks1` and `time_masks` left).
    "freq_masks": masks1_system("--average-last-epochs", "15", time_mask_param=0),
    # Not a candidate (bench/results/ablation/PREREGISTRATION.md, 2026-11-27 10:41 UTC): `masks1` trained with
    # seed 1 on the same splits (the validation actors still chosen by seed 0), to measure run-to-run spread.
    "masks1_seed1": masks1_system("--seeds", "1", "--split-seed", "0"),
    "mfcc": mfcc_system(),
    "narrow": NARROW,
    "clean40": CLEAN40,
    # A robustness candidate that was not adopted: babble on half the training clips, talkers cut to their speech.
    "babble50": ["--babble-probability", "0.5", "--babble-speech-only", *NARROW],
    # A robustness candidate that was not adopted: the same babble at the MFCC default's width
    # (bench/results/ablation/PREREGISTRATION.md).
    "default_babble50": ["--babble-probability", "0.5", "--babble-speech-only", *mfcc_system()],
    # A width candidate that was not adopted: 2x the narrow channels (bench/results/ablation/PREREGISTRATION.md).
    "wide2x": mfcc_system(channels=[32, 64, 128, 256]),
    # A robustness candidate that was not adopted: log-mel (64 bands, no deltas) instead of MFCC+deltas at the MFCC
    # default's width (bench/results/ablation/PREREGISTRATION.md).
    "logmel": mfcc_system(features="logmel", deltas=False),
    "cnn1d": [*CLEAN40_RECIPE, *mfcc_system(
        encoder="cnn1d", deltas=False, channels=[64, 128, 128], spec_augment=False, trim_silence_db=None,
        normalize_loudness=False, window_seconds=4.0)],
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
    from train import cli, data as ravdess
    from train.train import METRICS_MODULE

    dataset = ravdess.load_ravdess(data)
    features = np.stack([pooled_features(w) for w in ravdess.as_arrays(dataset)["input_values"]])
    labels = np.asarray(dataset["emotion"])
    metric = evaluate.load(METRICS_MODULE)
    jobs = ([(f"fold{f}", f, 0) for f in ravdess.EMOBOX_FOLDS] if protocol == "emobox"
            else [(f"seed{s}", None, s) for s in range(5)])
    runs = {}
    for name, fold, seed in jobs:
        started = time.time()
        index = np.arange(len(dataset))
        # Split as when it was measured (2 validation actors, trained on too), so its rows come in the same order.
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
    results = {p.parent.name: json.loads(p.read_text()) for p in sorted(args.output.glob("*/summary.json"))}
    text = table(results)
    (args.output / "README.md").write_text("# Accuracy on RAVDESS (8 classes)\n\nProduced by `python -m bench.accuracy`."
                                           " UA = unweighted accuracy (mean per-class recall), the headline; WA = "
                                           "accuracy.\n\nA run repeats bit for bit on the kind of CPU that trained it. "
                                           "Another CPU family rounds floats differently, and 60 epochs amplify that "
                                           "as another seed would: there a row reproduces within run-to-run noise "
                                           "(`masks1_seed1` against `masks1`: up to 3.1 points a test fold, 0.3 on "
                                           "their mean, and 1.4 on the mean over the folds' validation actors; "
                                           "`../accuracy_rerun` has the `default` row rerun on an Intel Xeon). Each "
                                           "fold's `metrics.json`, and a system's `summary.md`, name the CPU for the "
                                           "runs made after `freq_rows`; `swa15_floor` and `freq_rows` ran on an "
                                           "Intel Xeon, and the systems before them, as far as the speed benchmark "
                                           "of the same days records, on AMD EPYC machines.\n\nSystems: `default` "
                                           "is `python -m train` without options "
                                           "(log-mel, 40 bands, channels 32, 64, 128, 256, one SpecAugment mask of "
                                           "each kind, trained channels-last on all 20 actors outside the test fold, "
                                           "the weights of its last 15 epochs averaged; `swa15_all` in its "
                                           "pre-registration); `all_actors` the default before it (the same, the "
                                           "last epoch kept); `masks1` the default before that (`all_actors` with 2 "
                                           "of those actors held out as validation); `logmel40_2x` the default before "
                                           "that (`masks1` with two masks of each kind); `time_masks` an accuracy "
                                           "candidate not adopted (`masks1` with time masks only, no frequency mask); "
                                           "`pitch4` an accuracy candidate not adopted (`masks1` with pitch shifts of "
                                           "up to 4 semitones instead of 2); `no_stretch` an accuracy candidate not "
                                           "adopted (`masks1` without time-stretch augmentation); `dropout0` an "
                                           "accuracy candidate not adopted (`masks1` without dropout); `swa15` an "
                                           "accuracy candidate that passed its rule (`masks1` with the weights of "
                                           "its last 15 epochs averaged; `default` is its refit on all 20 actors); "
                                           "`swa15_floor` an accuracy candidate not adopted (`swa15` with the "
                                           "learning rate held at 0.2x its peak over the averaged epochs); "
                                           "`freq_rows` an accuracy candidate not adopted (`swa15` with the CNN's 3 "
                                           "frequency rows stacked as channels before the pooling over time, not "
                                           "averaged); "
                                           "`freq_masks` an accuracy candidate not adopted (`swa15` with frequency "
                                           "masks only, no time mask); "
                                           "`masks1_seed1` `masks1` with seed 1 on the same splits (run-to-run "
                                           "spread, not a candidate); `mfcc` the "
                                           "default before that "
                                           "(MFCC+deltas, channels 24, 48, 96, 192); "
                                           "`narrow` the MFCC default before its widening (channels 16, 32, 64, "
                                           "128); `clean40` an earlier default (40 epochs, no degraded audio in "
                                           "training); `babble50` a robustness candidate not adopted (babble on "
                                           "half the training clips, its talkers cut to their speech; narrow "
                                           "channels); `default_babble50` the same babble on `mfcc`, "
                                           "not adopted either; `wide2x` a width candidate not adopted (MFCC, "
                                           "channels 32, 64, 128, 256); `logmel` a robustness candidate not "
                                           "adopted (`mfcc` with log-mel, 64 bands, in place of MFCC+deltas); `cnn1d` "
                                           "and `rf` the earlier projects' designs (see the module docstring). A "
                                           "system's `random` row is missing until that run is made; `all_actors`'s "
                                           "serves `masks1` too (`random` holds out 10 % of its clips either "
                                           "way, so their `random` runs are the same).\n\n" + text)
    print(text)


if __name__ == "__main__":
    main()
