"""Beyond RAVDESS: accuracy on whole corpora a model never heard (leave one corpus out), against the RAVDESS-only
default, in one run.

    python -m bench.corpora --data ravdess=../shared/data/ravdess --data tess=../shared/data/tess \\
        --data emodb=~/data/emodb                                   # every system, every held-out corpus
    python -m bench.corpora --data ... --only multi --held-out tess   # a subset; finished models are reused

Systems, each scored on the held-out corpus's own classes (argmax restricted to them, the usual cross-corpus
convention) and on all 8:
- `ravdess_only`: the RAVDESS-only default (`python -m train --protocol full --features logmel` on RAVDESS), kept in
  `bench/models/ravdess_only` with its training record; it never heard another corpus; scored, not retrained.
- `multi`: `python -m train --protocol loco` on every corpus of --data but the held-out one, each corpus drawn as
  often (`--balance corpus`), as many clips an epoch as RAVDESS has (`--epoch-clips 1440`), so it costs what the
  RAVDESS-only recipe costs.
- `multi_unbalanced`: the same, drawing every clip alike (`--balance none`): the alternative to balancing.
- `multi_mfcc`: `multi` with MFCC + delta + delta-delta (40 coefficients of 64 mel bands) in place of log-mel, the
  front end the design card asks for.
- `shipped`: the recipe of the embedded default: `multi_mfcc` with 4 speakers of the training corpora held back
  (`--validation-actors 4`) to fit the calibration temperature and the "not sure" threshold. Besides each held-out
  corpus, it is scored on RAVDESS's 6 EmoBox folds (`--protocol emobox`, the other corpora on every fold's training
  side), in `shipped/ravdess_6fold/`, after the held-out corpora that judge it (`--held-out tess emodb` skips them).
- `shipped_seed1`: `shipped` with seed 1 (other weights, batches, augmentations and 4 other validation speakers):
  how far the held-out figures move by chance, the noise that a bar on them has to clear.
- `shipped_seed2`: `shipped` with seed 2, a third draw of that noise.
- `shipped_seed3`, `shipped_seed4`: `shipped` with seeds 3 and 4, so the over-seeds figures rest on five draws.
- `ravdess_only_mfcc`: the RAVDESS-only recipe with `multi_mfcc`'s front end (`python -m train --protocol full
  --features mfcc` on RAVDESS alone), trained once and scored on each held-out corpus: how much of `multi_mfcc`'s
  gain is the front end alone.

Results go to `bench/results/corpora/<system>/<held-out corpus>/` (metrics.json, confusion matrix) and a combined
`bench/results/corpora/README.md` table, with the mean ± standard deviation over the seeds of each recipe run on
several (`name`, `name_seed1`, ...).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench import shown

RESULTS = Path(__file__).parent / "results" / "corpora"
RAVDESS_ONLY_MODEL = Path(__file__).parent / "models" / "ravdess_only"
SYSTEMS = {
    "multi": ["--balance", "corpus", "--epoch-clips", "1440", "--features", "logmel"],
    "multi_unbalanced": ["--balance", "none", "--epoch-clips", "1440", "--features", "logmel"],
    "multi_mfcc": ["--balance", "corpus", "--epoch-clips", "1440", "--features", "mfcc", "--model-config",
                   '{"n_mels": 64}'],
}
SYSTEMS["shipped"] = [*SYSTEMS["multi_mfcc"], "--validation-actors", "4"]
SYSTEMS["shipped_seed1"] = [*SYSTEMS["shipped"], "--seeds", "1"]
SYSTEMS["shipped_seed2"] = [*SYSTEMS["shipped"], "--seeds", "2"]
SYSTEMS["shipped_seed3"] = [*SYSTEMS["shipped"], "--seeds", "3"]
SYSTEMS["shipped_seed4"] = [*SYSTEMS["shipped"], "--seeds", "4"]
SIX_FOLD_SYSTEMS = ("shipped",)


def run_loco(system: str, sources: list[str], held_out: str, output: Path) -> dict:
    """Train `system` on every corpus but `held_out` and score it there; finished runs are kept (--resume)."""
    from train.cli import main as train

    args = [arg for source in sources for arg in ("--data", source)]
    runs = train([*args, "--protocol", "loco", "--fold", held_out, *SYSTEMS[system], "--output-dir",
                  str(output), "--resume"])
    return runs[held_out]


def run_six_folds(system: str, sources: list[str], output: Path) -> dict:
    """Train `system` on every corpus with RAVDESS's EmoBox folds as the test sets: the summary over the 6 folds."""
    from train.cli import main as train

    args = [arg for source in sources for arg in ("--data", source)]
    train([*args, "--protocol", "emobox", "--fold", "all", *SYSTEMS[system], "--output-dir", str(output),
           "--resume"])
    return json.loads((output / "summary.json").read_text())


RAVDESS_ONLY_MFCC = ["--protocol", "full", "--features", "mfcc", "--model-config", '{"n_mels": 64}']


def score_default(held_out: str, source: str, output: Path, batch_size: int = 32, model: str | None = None) -> dict:
    """A RAVDESS-only checkpoint (default: the RAVDESS-only default) on every clip of the held-out corpus, as a training
    run reports it."""
    import ser
    from train import corpora, data, plots
    from train.train import machine, restricted_score, score

    dataset = corpora.load_corpus(held_out, source)
    recognizer = ser.EmotionRecognizer(model or str(RAVDESS_ONLY_MODEL))
    waves = data.as_arrays(dataset)["input_values"]
    logits = np.concatenate([np.log(recognizer.probabilities([np.asarray(w) for w in waves[i: i + batch_size]]))
                             for i in range(0, len(waves), batch_size)])
    references = np.asarray(dataset["emotion"])
    labels = recognizer.labels
    metrics = {"evaluated_on": "test", "model": shown(model or str(RAVDESS_ONLY_MODEL)), "labels": labels,
               "clips": {"test": len(dataset)}, **score(logits, references, labels)}
    metrics["restricted"] = restricted_score(logits, references, labels)
    metrics["machine"] = machine()
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plots.confusion_matrix(np.asarray(metrics["restricted"]["confusion_matrix"]), labels,
                           output / "confusion_matrix.png",
                           title=f"{held_out}, restricted: UA {metrics['restricted']['unweighted_accuracy']:.1%}")
    return metrics


def write_readme(results: dict[str, dict[str, dict]], output: Path) -> str:
    """The combined table: one row per system and held-out corpus."""
    lines = ["# Accuracy on corpora the model never heard", "",
             "Made by `python -m bench.corpora` (see its docstring for the systems). Restricted: the argmax is taken "
             "over the held-out corpus's own classes; all 8: over every class. Top class: the share of the clips "
             "given the most-predicted class (restricted); above 30 % on a balanced corpus is a collapse.", "",
             "| system | held-out corpus | clips | restricted UA | restricted WA | restricted macro-F1 | top class "
             "| UA, all 8 classes | ECE before → after (floor) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for system, by_corpus in results.items():
        for corpus, m in by_corpus.items():
            if corpus == "ravdess_6fold":
                continue
            r = m.get("restricted", m)
            lines.append(f"| {system} | {corpus} | {m['clips']['test']} | {r['unweighted_accuracy']:.1%} | "
                         f"{r['accuracy']:.1%} | {r['macro_f1']:.1%} | {r['top_class']} {r['top_class_share']:.0%} | "
                         f"{m['unweighted_accuracy']:.1%} | {calibration_cell(m)} |")
    six_folds = {system: by_corpus["ravdess_6fold"] for system, by_corpus in results.items()
                 if "ravdess_6fold" in by_corpus}
    if six_folds:
        lines += ["", "RAVDESS 6-fold (EmoBox actor folds; the other corpora on every fold's training side). ECE: "
                  "15 bins, the mean over the folds, before and after the temperature fitted on the validation "
                  "speakers; pooled: after, over the clips of all folds together (each scored by its own fold's "
                  "model). In brackets: the ECE that a perfectly calibrated model would still show on as many clips.",
                  "", "| system | folds | UA mean ± std | WA | macro-F1 | ECE before → after | ECE pooled |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for system, summary in six_folds.items():
            ua, wa, f1 = (summary[k] for k in ("unweighted_accuracy", "accuracy", "macro_f1"))
            lines.append(f"| {system} | {len(summary['runs'])} | {ua['mean']:.1%} ± {ua['std']:.1%} | "
                         f"{wa['mean']:.1%} | {f1['mean']:.1%} | {calibration_cell(summary)} | "
                         f"{pooled_calibration_cell(summary)} |")
    lines += seed_summary_lines(results)
    for system in SIX_FOLD_SYSTEMS:
        lines += risk_coverage_lines(system, output)
    text = "\n".join(lines) + "\n"
    output.mkdir(parents=True, exist_ok=True)
    (output / "README.md").write_text(text)
    return text


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.corpora", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True, metavar="CORPUS=SOURCE",
                        help="every corpus, as for python -m train; RAVDESS is never held out")
    parser.add_argument("--held-out", nargs="+",
                        help="corpora to hold out (default: every corpus); ravdess means its 6 EmoBox folds, run by "
                             f"{', '.join(SIX_FOLD_SYSTEMS)} only")
    parser.add_argument("--only", nargs="+", choices=("ravdess_only", *SYSTEMS, "ravdess_only_mfcc"),
                        help="systems to run (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from train.cli import parse_sources

    sources = parse_sources(args.data)
    held_out = args.held_out or list(sources)
    unknown = sorted(set(held_out) - set(sources))
    if unknown:
        parser.error(f"--held-out {' '.join(unknown)}: not among --data ({', '.join(sources)})")
    results = {}
    for system in args.only or ("ravdess_only", *SYSTEMS, "ravdess_only_mfcc"):
        results[system] = {}
        release = None
        if system == "ravdess_only_mfcc":  # trained once on RAVDESS alone, then scored on each held-out corpus
            from train.cli import main as train

            release = args.output / system / "release"
            train(["--data", f"ravdess={sources['ravdess'] or ''}", *RAVDESS_ONLY_MFCC, "--output-dir", str(release),
                   "--resume"])
        for corpus in (name for name in held_out if name != "ravdess"):
            output = args.output / system / corpus
            print(f"== {system}, {corpus} held out", flush=True)
            if system in ("ravdess_only", "ravdess_only_mfcc"):
                results[system][corpus] = score_default(corpus, sources[corpus], output,
                                                        model=str(release / "model") if release else None)
            else:
                results[system][corpus] = run_loco(system, args.data, corpus, output)
            write_readme(collect(args.output), args.output)
        if system in SIX_FOLD_SYSTEMS and "ravdess" in held_out:  # after the held-out corpora, which judge
            print(f"== {system}, RAVDESS 6-fold", flush=True)
            run_six_folds(system, args.data, args.output / system / "ravdess_6fold")
            write_readme(collect(args.output), args.output)
    print(write_readme(collect(args.output), args.output))
    return results


def seed_summary_lines(results: dict[str, dict[str, dict]]) -> list[str]:
    """Each recipe run on several seeds (`name`, `name_seed1`, ...), summarized per held-out corpus: the mean and
    standard deviation (n - 1) over the seeds, and the range of the top class's share and of the ECE after."""
    seeds = {}
    for system in results:
        base = system.split("_seed")[0]
        if base in results:
            seeds.setdefault(base, []).append(system)
    rows = []
    for base, systems in seeds.items():
        if len(systems) < 2:
            continue
        corpora = sorted(set.intersection(*(set(results[s]) - {"ravdess_6fold"} for s in systems)))
        for corpus in corpora:
            runs = [results[s][corpus] for s in systems]
            restricted = [m.get("restricted", m) for m in runs]

            def spread(key):
                values = np.array([r[key] for r in restricted])
                return f"{values.mean():.1%} ± {values.std(ddof=1):.1%}"

            shares = [r["top_class_share"] for r in restricted]
            eces = [m["calibration"]["after"]["ece"] for m in runs if m.get("calibration")]
            ece = f"{min(eces):.3f}–{max(eces):.3f}" if len(eces) == len(runs) else "–"
            rows.append(f"| {base} | {corpus} | {len(runs)} | {spread('unweighted_accuracy')} | {spread('accuracy')} "
                        f"| {spread('macro_f1')} | {min(shares):.0%}–{max(shares):.0%} | {ece} |")
    if not rows:
        return []
    return ["", "Over seeds: each recipe run on several seeds (`name`, `name_seed1`, ...), mean ± standard deviation "
            "of the restricted figures over the seeds, and the range of the top class's share and of the ECE after "
            "the temperature.", "",
            "| recipe | held-out corpus | seeds | restricted UA | restricted WA | restricted macro-F1 | top class "
            "| ECE after |", "| --- | --- | --- | --- | --- | --- | --- | --- |", *rows]


RISK_THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def risk_coverage_lines(system: str, output: Path) -> list[str]:
    """The trade-off of "not sure" for `system`'s calibrated models: at each threshold on the top probability, the
    share of clips answered and the accuracy on them (all 8 classes), on the RAVDESS folds (mean over the folds)
    and on each held-out corpus; and where each model's own threshold, chosen on its validation speakers, sits."""
    runs = {"RAVDESS 6-fold": sorted((output / system / "ravdess_6fold").glob("fold*/metrics.json")),
            **{f"{p.parent.name} held out": [p] for p in sorted((output / system).glob("*/metrics.json"))
               if p.parent.name != "release"}}
    rows = {name: [json.loads(p.read_text())["calibration"] for p in paths] for name, paths in runs.items() if paths}
    rows = {name: c for name, c in rows.items() if all("at_threshold" in x for x in c)}
    if not rows:
        return []

    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    def cell(calibrations, threshold):
        points = [next(r for r in c["after"]["risk_coverage"] if abs(r["threshold"] - threshold) < 1e-9)
                  for c in calibrations]
        accuracy = mean([r["accuracy"] for r in points])
        return (f"{mean([r['coverage'] for r in points]):.0%} / "
                + (f"{accuracy:.0%}" if accuracy is not None else "–"))

    def own(calibrations):
        at = [c["at_threshold"] for c in calibrations]
        answered, held_back = mean([a["accuracy_answered"] for a in at]), mean([a["accuracy_held_back"] for a in at])
        return (f"{mean([a['threshold'] for a in at]):.2f}: {mean([a['coverage'] for a in at]):.0%} / "
                f"{answered:.0%}, held back {held_back:.0%}" if held_back is not None else
                f"{mean([a['threshold'] for a in at]):.2f}: answers every clip ({answered:.0%})")

    lines = ["", f"Risk and coverage of `{system}` (calibrated probabilities, all 8 classes): at each threshold on the "
             "top probability, the share of clips answered / the accuracy on them. Own threshold: the one each "
             "model chose on its validation speakers (the mean over the folds), with the accuracy of the clips it "
             "holds back as \"not sure\".", "",
             "| scored on | " + " | ".join(f"≥ {t:.1f}" for t in RISK_THRESHOLDS) + " | own threshold |",
             "| --- |" + " --- |" * (len(RISK_THRESHOLDS) + 1)]
    for name, calibrations in rows.items():
        lines.append(f"| {name} | " + " | ".join(cell(calibrations, t) for t in RISK_THRESHOLDS)
                     + f" | {own(calibrations)} |")
    return lines


def calibration_cell(metrics: dict) -> str:
    """ECE before and after the temperature (all 8 classes) with, in brackets, the ECE a perfectly calibrated model
    would show on as many clips (`train.calibration.ece_sampling_floor`); "–" for a run that fitted none."""
    from train.calibration import ece_sampling_floor

    calibration = metrics.get("calibration")
    if not calibration or calibration.get("temperature", 1.0) == 1.0:
        return "–"
    after = calibration["after"]
    floor = after.get("ece_sampling_floor")
    if floor is None and "reliability" in after:  # a run recorded before the floor was
        floor = ece_sampling_floor(after["reliability"])
    shown_floor = f" ({floor:.3f})" if floor is not None else ""
    return f"{calibration['before']['ece']:.3f} → {after['ece']:.3f}{shown_floor}"


def pooled_calibration_cell(summary: dict) -> str:
    """ECE after the temperature over the clips of every fold together, and its floor."""
    after = summary.get("calibration", {}).get("after", {})
    if "pooled_ece" not in after:
        return "–"
    return f"{after['pooled_ece']:.3f} ({after['pooled_ece_sampling_floor']:.3f})"


def collect(output: Path) -> dict[str, dict[str, dict]]:
    """Every finished run under `output`, so the table covers earlier invocations too."""
    results = {}
    for system in ("ravdess_only", *SYSTEMS, "ravdess_only_mfcc"):
        for metrics_file in sorted(p for p in (output / system).glob("*/metrics.json") if p.parent.name != "release"):
            results.setdefault(system, {})[metrics_file.parent.name] = json.loads(metrics_file.read_text())
        six_folds = output / system / "ravdess_6fold" / "summary.json"
        if six_folds.is_file():
            results.setdefault(system, {})["ravdess_6fold"] = json.loads(six_folds.read_text())
    return results


if __name__ == "__main__":
    main()
