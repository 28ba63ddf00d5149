"""`python -m train`: train on one or more emotional speech corpora under a named protocol and write every artifact.

Examples:
    python -m train --data ../shared/data/ravdess --protocol emobox --fold all --output-dir runs/emobox
    python -m train --protocol full --output-dir runs/release          # RAVDESS, downloaded from Zenodo
    python -m train --data ravdess=DIR --data tess=DIR --data emodb=DIR --protocol loco --output-dir runs/loco
    python -m train --data ./ravdess --protocol random --seeds 0 1 2 3 4 --output-dir runs/random
    python -m train --data ./ravdess --features mfcc --no-augment degrade --output-dir runs/mfcc
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from ser import RAVDESS_EMOTIONS

from . import calibration, corpora, data, plots
from .train import AUGMENTATIONS, Recipe, train_fold


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", metavar="[CORPUS=]SOURCE",
                   help="a corpus to train on; repeat for several. CORPUS is one of " + ", ".join(corpora.CORPORA)
                        + " (default ravdess); SOURCE is its folder in the original layout, a .zip, a Hub dataset "
                        "id, or for manifest a CSV/JSONL file (path, emotion, speaker, corpus). Default: RAVDESS "
                        f"from {corpora.ZENODO_URL}")
    p.add_argument("--hub-columns", default="", help="for Hub datasets: audio=COL,emotion=COL,speaker=COL")
    p.add_argument("--protocol", choices=data.PROTOCOLS, default="emobox",
                   help="emobox: RAVDESS's actor-disjoint EmoBox folds (headline), other corpora train; loco: leave "
                        "one corpus out, tested on it; random: speaker-DEPENDENT 80/20 clip split, for comparison "
                        "only; full: every speaker, for a release model")
    p.add_argument("--fold", default="all",
                   help="emobox fold 1..6, a loco corpus, or 'all' (default) for every fold and a summary")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to run (each a separate model)")
    p.add_argument("--validation-actors", type=int, default=data.VALIDATION_ACTORS, metavar="N",
                   help="actors of the training pool held out as validation, half male, half female, chosen by the "
                        "seed, for a validation curve (default %(default)s). `random` holds out 10 %% of its "
                        "training clips instead")
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--resume", action="store_true",
                   help="keep the folds or seeds already finished in --output-dir (model and metrics.json) when their "
                        "recipe, classes and actors match this run's, and train only the rest")
    p.add_argument("--classes", help=f"comma-separated subset of {','.join(RAVDESS_EMOTIONS)} (default: all)")
    defaults = Recipe()
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    p.add_argument("--average-last-epochs", type=int, default=None, metavar="N",
                   help="keep the mean of the last N epochs' weights (default: a quarter of --epochs); 0 keeps the "
                        "last epoch's")
    p.add_argument("--no-augment", nargs="+", default=[], metavar="NAME",
                   choices=(*AUGMENTATIONS, "spec-augment"),
                   help="augmentations to turn off: " + ", ".join((*AUGMENTATIONS, "spec-augment")) +
                        " (degrade: coloured noise, babble, telephone band and clipping)")
    p.add_argument("--augment-probability", type=float, default=defaults.augment_probability)
    p.add_argument("--balance", choices=data.BALANCING, default=defaults.balance,
                   help="draw each corpus as often (corpus, the default), every clip alike (none) or each speaker as often")
    p.add_argument("--epoch-clips", type=int, metavar="N",
                   help="clips drawn an epoch, with replacement (default: as many as the training split has)")
    p.add_argument("--workers", type=int, default=defaults.workers,
                   help="processes that augment batches while the model trains (default %(default)s; results "
                        "repeat for a given count, not across counts)")
    p.add_argument("--features", choices=tuple(FRONT_ENDS),
                   help="front end: MFCC with delta and delta-delta (the SERConfig default), or log-mel (40 bands, "
                        "no deltas: the RAVDESS-only recipe)")
    p.add_argument("--model-config", default="",
                   help="any other SERConfig values as JSON, e.g. '{\"encoder\": \"cnn1d\"}' (the 1-D CNN over "
                        "time-averaged features), '{\"pooling\": \"attention\"}' (or mean, stats), "
                        "'{\"channels\": [16, 32, 64], \"test_time_speeds\": [0.9, 1.1]}'")
    p.add_argument("--push-to-hub", metavar="USER/NAME", help="upload the trained model (protocol full) to the Hub")
    return p.parse_args(argv)


# The two front ends --features names, as whole SERConfig settings.
FRONT_ENDS = {"mfcc": {"features": "mfcc", "deltas": True, "n_mels": 64},
              "logmel": {"features": "logmel", "deltas": False, "n_mels": 40}}


def model_config(args) -> dict:
    """The SERConfig overrides that the options ask for."""
    config = json.loads(args.model_config) if args.model_config else {}
    if args.features:
        config = {**FRONT_ENDS[args.features], **config}
    if "spec-augment" in args.no_augment:
        config["spec_augment"] = False
    return config


def parse_mapping(text: str) -> dict:
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"--hub-columns must look like audio=COL,emotion=COL,speaker=COL, got {text!r}")
    return dict(pairs)


def parse_sources(specs: list[str] | None) -> dict[str, str | None]:
    """--data values -> {corpus: source}; a value without CORPUS= is RAVDESS."""
    sources = {}
    for spec in specs or [""]:
        name, _, source = spec.partition("=") if spec.split("=", 1)[0] in corpora.CORPORA else ("ravdess", "", spec)
        if name in sources:
            raise SystemExit(f"--data names {name} twice")
        sources[name] = os.path.expanduser(source) if source else None  # "~/data" inside quotes stays literal
    return sources


def summarize(runs: dict[str, dict], output_dir: Path, protocol: str) -> dict:
    """Mean and standard deviation over folds or seeds, the summed confusion matrix, and a markdown table."""
    keys = ("unweighted_accuracy", "accuracy", "macro_f1")
    summary = {"protocol": protocol, "runs": {name: {
        **{k: m[k] for k in keys}, "top_class": m.get("top_class"), "top_class_share": m.get("top_class_share"),
        **({"restricted": {k: m["restricted"][k] for k in (*keys, "top_class", "top_class_share", "classes")}}
           if "restricted" in m else {})} for name, m in runs.items()}}
    for k in keys:
        values = np.array([m[k] for m in runs.values()])
        summary[k] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    calibrated = [m["calibration"] for m in runs.values() if "calibration" in m]
    if len(calibrated) == len(runs):
        # ECE and NLL: the mean over the runs, each on its own test clips; then ECE over all their clips pooled,
        # which few clips per run leave less noisy, each beside the ECE a perfectly calibrated model would show.
        summary["calibration"] = {"temperature": float(np.mean([c["temperature"] for c in calibrated]))}
        for when in ("before", "after"):
            tables = [c[when]["reliability"] for c in calibrated]
            pooled = calibration.pooled_reliability(tables)
            summary["calibration"][when] = {
                **{k: float(np.mean([c[when][k] for c in calibrated])) for k in ("ece", "nll")},
                "ece_sampling_floor": float(np.mean([calibration.ece_sampling_floor(t) for t in tables])),
                "pooled_ece": calibration.binned_ece(pooled),
                "pooled_ece_sampling_floor": calibration.ece_sampling_floor(pooled)}
    first = next(iter(runs.values()))
    labels = first["labels"]
    matrix = np.sum([m["confusion_matrix"] for m in runs.values()], axis=0)
    summary.update(labels=labels, confusion_matrix=matrix.tolist(), parameters=first["parameters"],
                   train_seconds=float(sum(m["train_seconds"] for m in runs.values())),
                   cpus=sorted({m["machine"]["cpu"] for m in runs.values() if "machine" in m}))
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (output_dir / "summary.md").write_text(summary_table(summary))
    plots.confusion_matrix(matrix, labels, output_dir / "confusion_matrix.png",
                           title=f"{protocol}, summed over {len(runs)} runs")
    return summary


def summary_table(summary: dict) -> str:
    restricted = any("restricted" in m for m in summary["runs"].values())
    rows = ["| run | UA | WA | macro-F1 | top class |" + (" restricted UA | restricted top class |" if restricted else ""),
            "| --- | --- | --- | --- | --- |" + (" --- | --- |" if restricted else "")]

    def top(m):
        return f"{m['top_class']} {m['top_class_share']:.0%}" if m.get("top_class") else "–"

    for name, m in summary["runs"].items():
        row = f"| {name} | {m['unweighted_accuracy']:.1%} | {m['accuracy']:.1%} | {m['macro_f1']:.1%} | {top(m)} |"
        if restricted:
            r = m.get("restricted")
            row += f" {r['unweighted_accuracy']:.1%} | {top(r)} |" if r else " – | – |"
        rows.append(row)
    ua, wa, f1 = (summary[k] for k in ("unweighted_accuracy", "accuracy", "macro_f1"))
    rows.append(f"| **mean ± std** | **{ua['mean']:.1%} ± {ua['std']:.1%}** | {wa['mean']:.1%} ± {wa['std']:.1%} "
                f"| {f1['mean']:.1%} ± {f1['std']:.1%} | |" + (" | |" if restricted else ""))
    if summary.get("cpus"):
        rows.append(f"\nTrained on: {', '.join(summary['cpus'])}.")
    return "\n".join(rows) + "\n"


def finished_run(run_dir: Path, recipe: Recipe, splits, id2label: dict[int, str]) -> dict | None:
    """The metrics of a run already in `run_dir` that trained `recipe` on the same classes and speakers (the same
    clips, for the `random` protocol, whose split is fixed by the seed in the recipe), else None."""
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file() or not (run_dir / "model" / "model.safetensors").is_file():
        return None
    metrics = json.loads(metrics_file.read_text())
    try:  # a record from before an option existed ran with its default
        recorded = Recipe(**metrics.get("recipe", {})).record()
    except (TypeError, ValueError):
        return None
    same = (recorded == recipe.record()
            and metrics.get("labels") == [id2label[i] for i in range(len(id2label))]
            and metrics.get("speakers") == {name: sorted(set(split["speaker"])) for name, split in splits.items()}
            and metrics.get("clips") == {name: len(split) for name, split in splits.items()})
    return metrics if same else None


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.push_to_hub:  # a missing token should stop the run before the download and the training
        from ser.hub import HubError, hub_token

        try:
            hub_token()
        except HubError as error:
            raise SystemExit(f"error: {error}") from None
    recipe_kwargs = dict(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        average_last_epochs=args.average_last_epochs, augment_probability=args.augment_probability,
        augment=tuple(name for name in AUGMENTATIONS if name not in args.no_augment), workers=args.workers,
        balance=args.balance, epoch_clips=args.epoch_clips,
        model=model_config(args),
    )
    dataset = corpora.load_corpora(parse_sources(args.data), hub_columns=parse_mapping(args.hub_columns))
    id2label = dict(enumerate(RAVDESS_EMOTIONS))
    if args.classes:
        dataset, id2label = data.select_classes(dataset, args.classes.split(","))

    if args.protocol in ("emobox", "loco"):
        if args.protocol == "emobox":
            folds = sorted(data.EMOBOX_FOLDS) if args.fold == "all" else [int(args.fold)]
        else:
            folds = sorted(set(dataset["corpus"])) if args.fold == "all" else [args.fold]
        prefix = "fold" if args.protocol == "emobox" else ""
        jobs = [(f"{prefix}{f}_seed{s}" if len(args.seeds) > 1 else f"{prefix}{f}", f, s)
                for f in folds for s in args.seeds]
    else:
        jobs = [(f"seed{s}", None, s) for s in args.seeds]

    if args.push_to_hub and len(jobs) != 1:  # say so before training, not after
        raise SystemExit("--push-to-hub uploads one model: train one fold or seed (e.g. --protocol full)")

    runs = {}
    for name, fold, seed in jobs:
        splits = data.split_dataset(dataset, args.protocol, fold=fold, seed=seed,
                                    validation_actors=args.validation_actors)
        run_dir = args.output_dir / name if len(jobs) > 1 else args.output_dir
        print(f"== {name}: " + ", ".join(f"{k} {len(v)} clips" for k, v in splits.items()), flush=True)
        recipe = Recipe(seed=seed, **recipe_kwargs)
        metrics = finished_run(run_dir, recipe, splits, id2label) if args.resume else None
        if metrics is not None:
            print(f"== {name}: already trained with this recipe in {run_dir}, kept", flush=True)
        else:
            metrics = train_fold(splits, recipe, run_dir, id2label, protocol=args.protocol)
        scored = (f"UA {metrics['unweighted_accuracy']:.3f} on {metrics['evaluated_on']}" if metrics["evaluated_on"]
                  else "trained on every speaker, nothing held out to score")
        print(f"== {name}: {scored}", flush=True)
        runs[name] = metrics
    if len(runs) > 1 and all(m["evaluated_on"] for m in runs.values()):  # runs on every speaker scored nothing
        summary = summarize(runs, args.output_dir, args.protocol)
        print(summary_table(summary))
    if args.push_to_hub:
        from ser.hub import HubError, push_model

        run_dir = args.output_dir
        try:
            url = push_model(run_dir / "model", args.push_to_hub, run_dir=run_dir)
        except HubError as error:
            raise SystemExit(f"error: {error} (the model is saved in {run_dir}; push it later with "
                             f"`python -m ser.hub push {run_dir} {args.push_to_hub}`)") from None
        print(f"pushed to {url}")
    return runs
