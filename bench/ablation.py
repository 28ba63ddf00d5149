"""Recipe screening on validation actors only: how the default recipe was chosen.

    python -m bench.ablation --data ../shared/data/ravdess                 # every variant below
    python -m bench.ablation --data DIR --only "default + 60 epochs"      # a subset
    python -m bench.ablation --data DIR --only "default + 60 epochs" --sets 5   # on all 5 validation sets
    python -m bench.ablation --data DIR --only "full training path: channels 32, 64, 128, 256 (2x)" --sets 5
    python -m bench.ablation --data DIR --only "..." --first-set 3 --sets 5   # sets 3 and 4 only

Each variant trains on EmoBox fold 1's training actors minus 4 validation actors and is scored on those 4
validation actors; the fold's test actors are never loaded. 4 actors are few (the 6-fold runs' own 2 validation
actors per fold once missed a 4.5-point loss on the test folds), so `--sets 5` repeats the run for each of 5
disjoint sets of 4 that together cover all 20 training actors, and the table reports their mean. To fit many
variants on a 2-core CPU, the front end runs once (features cached in memory) and the loop trains the model's
CNN on them with SpecAugment but without waveform augmentation, so figures are comparable with each other, not
with the 6-fold table. The rows named "full training path" instead train through `train.train.train_fold`, as
`python -m train` does (waveform augmentation, degraded speech, `transformers.Trainer`; about 8 minutes a set on 2
cores): the only way to screen changes to the waveform recipe, and the one whose figures sit closest to the 6-fold
table. Those rows also score babble at 10 dB on the validation actors (`bench.robustness`'s condition, talkers from
the other validation actors). Results are appended to `bench/results/ablation/results.jsonl` and tabulated in
`bench/results/ablation/README.md`.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from bench import LOGMEL40_2X_MODEL, MASKS1_MODEL, MFCC_MODEL
from ser import SERConfig, SERForAudioClassification

RESULTS = Path(__file__).parent / "results" / "ablation"
FOLD = 1
SPLITS = 5  # disjoint sets of 4 validation actors in fold 1's 20 training actors
# name -> (SERConfig overrides, recipe); each row changes the row above it.
TEN_MS = {"hop_length": 160, "time_mask_param": 40}  # the frame rate before the last row
FIRST = {**TEN_MS, "pooling": "mean", "dropout": 0.3}  # the first release's network
VARIANTS = {
    "first release's network and recipe (mean pooling, dropout 0.3, lr 1e-3, batch 32, 30 epochs)":
        (FIRST, {"lr": 1e-3, "batch_size": 32, "epochs": 30}),
    "same, log-mel (64 bands) instead of MFCC+deltas": (
        {**FIRST, "features": "logmel", "deltas": False}, {"lr": 1e-3, "batch_size": 32, "epochs": 30}),
    "MFCC+deltas, statistics pooling, dropout 0.1": (TEN_MS, {"lr": 1e-3, "batch_size": 32, "epochs": 30}),
    "+ learning rate 3e-3, batch 16": (TEN_MS, {"lr": 3e-3, "batch_size": 16, "epochs": 30}),
    "+ 20 ms hop, 40 epochs (the default recipe)": ({}, {"lr": 3e-3, "batch_size": 16, "epochs": 40}),
}
# Candidate changes to the default recipe, each alone (not chained); "seed 1" shows the screening's own noise.
DEFAULT = {"lr": 3e-3, "batch_size": 16, "epochs": 40}
VARIANTS.update({
    "default recipe, seed 1": ({}, {**DEFAULT, "seed": 1}),
    "default + label smoothing 0.1": ({}, {**DEFAULT, "label_smoothing": 0.1}),
    "default + mixup (alpha 0.2, on features here)": ({}, {**DEFAULT, "mixup": 0.2}),
    "default + 60 epochs": ({}, {**DEFAULT, "epochs": 60}),
    "default + 80 epochs": ({}, {**DEFAULT, "epochs": 80}),
    "default + attentive statistics pooling": ({"pooling": "attention"}, DEFAULT),
    "default + 1.5x channels (24, 48, 96, 192)": ({"channels": [24, 48, 96, 192]}, DEFAULT),
    "default with log-mel (64 bands, no deltas) instead of MFCC+deltas": ({"features": "logmel", "deltas": False}, DEFAULT),
    "default + 60 epochs + utterance mean normalization (speech frames, 35 dB)": (
        {"utterance_mean_norm_db": 35.0}, {**DEFAULT, "epochs": 60}),
    "default + 60 epochs + dropout 0.2": ({"dropout": 0.2}, {**DEFAULT, "epochs": 60}),
    "default + 60 epochs + 3 SpecAugment masks of each kind (not 2)": ({"num_masks": 3}, {**DEFAULT, "epochs": 60}),
})

# The feature-level rows above were screened on the MFCC default before it widened (2026-11-26); their "default"
# keeps the input and width they ran with, so they reproduce.
FEATURE_SCREEN_BASE = {**MFCC_MODEL, "channels": [16, 32, 64, 128]}


# Every Trainer row was screened before the weight averaging became the default (2026-11-27): they keep the last
# epoch unless the row says otherwise.
LAST_EPOCH = {"average_last_epochs": 0}


def mfcc_row(channels_last: bool = False, **model) -> dict:
    """Recipe overrides of a row screened as changes to the MFCC default (`bench.MFCC_MODEL`): these `SERConfig`
    changes, trained contiguous unless the row says otherwise, as it was before channels-last became the default."""
    return {"model": {**MFCC_MODEL, **model}, "channels_last": channels_last, **LAST_EPOCH}

LOGMEL40_2X = {"model": LOGMEL40_2X_MODEL, "channels_last": True, **LAST_EPOCH}

# name -> `train.train.Recipe` overrides, trained through the Trainer path (see the module docstring). Each names its
# width rather than "default", so a row keeps its meaning when the default changes.
TRAINER_VARIANTS = {
    "full training path: channels 16, 32, 64, 128 (narrow; the MFCC default until early 2026-11-26)":
        mfcc_row(channels=[16, 32, 64, 128]),
    "full training path: channels 24, 48, 96, 192 (1.5x; the MFCC default, 2026-11-26)": mfcc_row(),
    "full training path: channels 32, 64, 128, 256 (2x)": mfcc_row(channels=[32, 64, 128, 256]),
    "full training path: channels 24, 48, 96, 192 + babble on half the training clips, talkers cut to their speech":
        {**mfcc_row(), "babble_probability": 0.5, "babble_speech_only": True},
    # The 1.5x row again with another seed (initialization, augmentation, batch order): the screen's own noise.
    "full training path: channels 24, 48, 96, 192 (1.5x), seed 1": {**mfcc_row(), "seed": 1},
    # Seed 0 like the 1.5x row: the same training up to its last epoch, so the two rows are a paired comparison.
    "full training path: channels 24, 48, 96, 192 (1.5x) + weights averaged over the last 15 epochs":
        {**mfcc_row(), "average_last_epochs": 15},
    "full training path: channels 24, 48, 96, 192 (1.5x), log-mel (64 bands, no deltas) instead of MFCC+deltas":
        mfcc_row(features="logmel", deltas=False),
    "full training path: channels 24, 48, 96, 192 (1.5x) + speaker adversary (gradient reversal, weight 0.5)":
        {**mfcc_row(), "speaker_adversary": 0.5},
    "full training path: channels 24, 48, 96, 192 (1.5x) + speaker confusion (weight 0.5)":
        {**mfcc_row(), "speaker_adversary": 0.5, "speaker_adversary_loss": "confusion"},
    # Channels-last so that 2x channels take the 1.5x MFCC row's time a step (40 bands give the network MFCC's 40
    # rows). Adopted: the default config and recipe from 2026-11-26 to 2026-11-27 (PREREGISTRATION.md).
    "full training path: channels 32, 64, 128, 256 (2x), log-mel (40 bands, no deltas), channels-last": LOGMEL40_2X,
    # The default ends training at about 64 % accuracy on its augmented clips, below its validation UA: it underfits
    # what it is shown. One SpecAugment mask of each kind instead of two masks less of each clip. Adopted: the default
    # since 2026-11-27 (PREREGISTRATION.md).
    "full training path: log-mel 40 bands, 2x channels, channels-last (the default since 2026-11-26) + 1 SpecAugment "
    "mask of each kind (not 2)": {**LOGMEL40_2X, "model": MASKS1_MODEL},
}
TRAINER_RUNS = Path("runs") / "ablation"  # the screen's checkpoints (not committed)


def validation_splits(actors: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) for each of 5 disjoint sets of 4 validation actors from fold 1's 20 training
    actors; together they cover all 20. Set 0 (2 male, 2 female) is the one every row of the table was first
    screened on; the remaining 7 men and 9 women are dealt out in turn to the other 4."""
    from train.data import EMOBOX_FOLDS

    pool = sorted(set(actors.tolist()) - set(EMOBOX_FOLDS[FOLD]))
    rng = np.random.RandomState(FOLD)
    males, females = [a for a in pool if a % 2], [a for a in pool if not a % 2]
    first = set(rng.choice(males, 2, replace=False)) | set(rng.choice(females, 2, replace=False))
    rest = [a for a in males + females if a not in first]
    sets = [first] + [set(rest[i::SPLITS - 1]) for i in range(SPLITS - 1)]
    return [(np.flatnonzero(np.isin(actors, sorted(set(pool) - v))), np.flatnonzero(np.isin(actors, sorted(v))))
            for v in sets]


def unweighted_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean([(pred[true == c] == c).mean() for c in np.unique(true)]))


def run_variant(name, model_overrides, recipe, waves, labels, train_rows, val_rows, seed=0) -> dict:
    from train.train import collate

    torch.manual_seed(seed)
    np.random.seed(seed)
    model = SERForAudioClassification(SERConfig(**{**FEATURE_SCREEN_BASE, **model_overrides}))

    @torch.no_grad()
    def features(rows):
        return torch.cat([model.front_end.raw_features(collate([{"input_values": waves[i], "emotion": 0}
                                                                  for i in rows[s:s + 64]])["input_values"])
                          for s in range(0, len(rows), 64)])

    x_train, x_val = features(train_rows), features(val_rows)
    model.front_end.set_normalization(x_train.mean(dim=(0, 3)), x_train.std(dim=(0, 3)))
    x_train, x_val = ((x - model.front_end.feature_mean[..., None]) / model.front_end.feature_std[..., None]
                      for x in (x_train, x_val))
    y_train = torch.tensor(labels[train_rows])
    counts = np.bincount(labels[train_rows], minlength=8)
    weights = torch.tensor(counts.sum() / counts / len(counts), dtype=torch.float32)
    head = lambda x: model.classifier(model.pooling(model.encoder(x).mean(2)))  # noqa: E731 (embed() minus the front end)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=1e-2)
    steps = recipe["epochs"] * math.ceil(len(train_rows) / recipe["batch_size"])
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1, s / steps))))
    started, curve = time.time(), []
    for epoch in range(recipe["epochs"]):
        model.train()
        order, correct = torch.randperm(len(train_rows)), 0
        for s in range(0, len(order), recipe["batch_size"]):
            batch = order[s: s + recipe["batch_size"]]
            x = model.spec_augment(x_train[batch]) if model.config.spec_augment else x_train[batch]
            target = y_train[batch]
            if recipe.get("mixup"):
                target = torch.nn.functional.one_hot(target, 8).float()
                mix = float(np.random.beta(recipe["mixup"], recipe["mixup"]))
                partner = torch.randperm(len(batch))
                x, target = mix * x + (1 - mix) * x[partner], mix * target + (1 - mix) * target[partner]
            logits = head(x)
            loss = torch.nn.functional.cross_entropy(logits, target, weight=weights,
                                                     label_smoothing=recipe.get("label_smoothing", 0.0))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            correct += int((logits.argmax(-1) == y_train[batch]).sum())
        if (epoch + 1) % 5 == 0 or epoch + 1 == recipe["epochs"]:
            model.eval()
            with torch.no_grad():
                pred = torch.cat([head(x_val[s: s + 128]) for s in range(0, len(x_val), 128)]).argmax(-1).numpy()
            curve.append({"epoch": epoch + 1, "train_accuracy": correct / len(train_rows),
                          "validation_ua": unweighted_accuracy(pred, labels[val_rows])})
            print(name, curve[-1], flush=True)
    return {"name": name, "model": model_overrides, "recipe": recipe, "validation_ua": curve[-1]["validation_ua"],
            "train_accuracy": curve[-1]["train_accuracy"], "curve": curve, "seconds": round(time.time() - started)}


def run_trainer_variant(name, overrides, dataset, train_rows, val_rows, output_dir: Path) -> dict:
    """Train `Recipe(**overrides)` with `train.train.train_fold` on `train_rows`, score it on `val_rows`, clean (the
    Trainer's evaluation) and with babble at 10 dB (`bench.robustness`, through `ser.EmotionRecognizer`)."""
    import datasets
    import evaluate

    import ser
    from bench import robustness
    from train.train import METRICS_MODULE, Recipe, train_fold

    recipe = Recipe(**overrides)
    splits = datasets.DatasetDict(train=dataset.select(train_rows), validation=dataset.select(val_rows))
    started = time.time()
    metrics = train_fold(splits, recipe, output_dir, dict(enumerate(ser.RAVDESS_EMOTIONS)), protocol="ablation")
    seconds = round(time.time() - started)
    recognizer = ser.EmotionRecognizer(str(output_dir / "model"))
    clips, _ = robustness.fold_clips(dataset, metrics["actors"]["validation"], recognizer.labels, 0, "the screen")
    metric = evaluate.load(METRICS_MODULE)
    ua = {condition: robustness.score(recognizer, clips, robustness.degrade(clips, condition), metric,
                                      batch_size=32)["unweighted_accuracy"] for condition in ("clean", "babble_10db")}
    curve = [{"epoch": epoch + 1, "validation_ua": value}
             for epoch, value in enumerate(metrics["validation_unweighted_accuracy_per_epoch"])]
    return {"name": name, "model": recipe.model, "recipe": overrides, "validation_ua": metrics["unweighted_accuracy"],
            "train_accuracy": metrics["train_accuracy_per_epoch"][-1], "curve": curve, "seconds": seconds,
            "clean_ua_recognizer": ua["clean"], "babble_10db_ua": ua["babble_10db"],
            "babble_10db_drop_points": 100 * (ua["clean"] - ua["babble_10db"])}


def table(results: dict[str, dict[int, dict]]) -> str:
    """One row per variant: its score on validation set 0 and, once it has run on all 5 sets, their mean."""
    rows = ["| variant | validation UA, set 0 (4 actors) | mean ± std over the 5 sets (20 actors; sets 0 to 4) "
            "| train accuracy (set 0) | median minutes per set (wall clock, longer when other jobs shared the CPU) "
            "| babble at 10 dB: drop in points, mean over the 5 sets (full training path only) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for name, by_split in results.items():
        first = by_split.get(0)
        scores = [by_split[k]["validation_ua"] for k in range(SPLITS) if k in by_split]
        per_set = " / ".join(f"{by_split[k]['validation_ua']:.1%}" if k in by_split else "-" for k in range(SPLITS))
        overall = (f"{np.mean(scores):.1%} ± {np.std(scores):.1%} ({per_set})" if len(scores) == SPLITS
                   else f"{len(scores)} of {SPLITS} sets run ({per_set})" if len(scores) > 1 else "not run")
        minutes = np.median([r["seconds"] for r in by_split.values()]) / 60
        first_ua, first_train = ((f"{first['validation_ua']:.1%}", f"{first['train_accuracy']:.1%}") if first
                                 else ("not run", "-"))
        drops = [by_split[k]["babble_10db_drop_points"] for k in range(SPLITS) if "babble_10db_drop_points"
                 in by_split.get(k, {})]
        babble = (f"{np.mean(drops):.1f} ({' / '.join(f'{x:.1f}' for x in drops)})" if len(drops) == SPLITS
                  else "-")
        rows.append(f"| {name} | {first_ua} | {overall} | {first_train} | {minutes:.0f} | {babble} |")
    return "\n".join(rows) + "\n"


def write_report() -> None:
    """Tabulate the latest result of each variant on each validation set in results.jsonl into README.md."""
    latest: dict[str, dict[int, dict]] = {}
    for line in (RESULTS / "results.jsonl").read_text().splitlines():
        result = json.loads(line)
        latest.setdefault(result["name"], {})[result.get("split", 0)] = result
    ordered = {n: latest[n] for n in [*VARIANTS, *TRAINER_VARIANTS] if n in latest}
    (RESULTS / "README.md").write_text(
        "# Recipe screening (validation actors only)\n\nProduced by `python -m bench.ablation --data "
        "../shared/data/ravdess`; see the module docstring for the protocol. Scores on 4 validation actors are "
        "noisy (a few points either way: compare the two seeds of the default recipe, and set 0 with the mean over "
        "all 5 sets, `--sets 5`; the same run repeated can differ by a few points too: results.jsonl keeps every "
        "run, the table shows each variant's latest on each set); they choose settings, the 6-fold table in "
        "`../accuracy` reports. The first five rows build the default recipe step by step; the rows after them each change one thing in it. \"Default\" "
        "here is the `clean40` recipe of `../accuracy` (channels 16, 32, 64, 128); the current default adds degraded speech to the waveform "
        "augmentation and trains 60 epochs, which this feature-level screen cannot show (it was chosen on the "
        "validation actors of the 6-fold runs instead: see the repository README). The rows named \"full training "
        "path\" do show it: they train the recipe of `python -m train` through its own code, waveform augmentation "
        "included, on MFCC+deltas at the width each names, contiguous, unless the row names another input or "
        "channels-last (the last row: the default since 2026-11-26), and also score babble at 10 dB on the "
        "validation actors. Rules for judging a "
        "candidate are written down before its run: [PREREGISTRATION.md](PREREGISTRATION.md).\n\n"
        + table(ordered))
    print(table(ordered))


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="RAVDESS source, as for `python -m train --data`")
    parser.add_argument("--only", nargs="+", choices=[*VARIANTS, *TRAINER_VARIANTS], default=list(VARIANTS),
                        help="variants to run (default: every feature-level one; the full training path ones take "
                             "about 8 minutes a set and run only when named)")
    parser.add_argument("--sets", type=int, default=1, choices=range(1, SPLITS + 1),
                        help=f"validation sets to run each variant on (default 1: set 0 only; {SPLITS}: all 20 "
                             "actors)")
    parser.add_argument("--first-set", type=int, default=0, choices=range(SPLITS),
                        help="skip the sets before this one, e.g. to finish an interrupted `--sets 5` run")
    args = parser.parse_args(argv)
    if args.first_set >= args.sets:
        parser.error(f"--first-set {args.first_set} leaves no set to run below --sets {args.sets}")
    from train import data

    dataset = data.load_ravdess(args.data)
    waves = data.as_arrays(dataset)["input_values"]
    labels, actors = np.asarray(dataset["emotion"]), np.asarray(dataset["actor"])
    splits = validation_splits(actors)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        for split in range(args.first_set, args.sets):
            train_rows, val_rows = splits[split]
            if name in TRAINER_VARIANTS:
                result = run_trainer_variant(name, TRAINER_VARIANTS[name], dataset, train_rows, val_rows,
                                             TRAINER_RUNS / slug(name) / f"set{split}")
            else:
                result = run_variant(name, *VARIANTS[name], waves, labels, train_rows, val_rows,
                                     seed=VARIANTS[name][1].get("seed", 0))
            result.update(split=split, validation_actors=sorted(int(a) for a in set(actors[val_rows])))
            with open(RESULTS / "results.jsonl", "a") as f:
                f.write(json.dumps(result) + "\n")
    write_report()


if __name__ == "__main__":
    main()
