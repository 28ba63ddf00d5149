"""What the weight averaging adds: the averaged model against the single epochs it averages.

    python -m bench.averaging --runs bench/results/accuracy/swa15_emobox bench/results/accuracy/swa15_floor_emobox

For each `bench.accuracy` run whose folds averaged their last N epochs' weights (`--average-last-epochs N`) and held
validation actors out, reads every fold's `metrics.json` and compares, on those validation actors, the UA of the
averaged weights with the mean UA of the N single epochs (scored after each epoch during training). Their difference
is the averaging's own gain; the mean of the single epochs shows where the schedule left them. Writes a markdown table
to `--output` and prints it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def fold_figures(metrics: dict) -> tuple[float, float]:
    """(mean validation UA of the averaged epochs, validation UA of their averaged weights) of one fold's run."""
    epochs = metrics["recipe"].get("average_last_epochs") or 0
    per_epoch = metrics["validation_unweighted_accuracy_per_epoch"]
    averaged = metrics["final_validation_unweighted_accuracy"]
    if not epochs or averaged is None or len(per_epoch) < epochs:
        raise ValueError("needs a run that averaged its last epochs' weights and scored validation actors each epoch")
    return float(np.mean(per_epoch[-epochs:])), float(averaged)


def run_figures(run: Path) -> dict:
    folds = sorted(run.glob("fold*/metrics.json"))
    if not folds:
        raise SystemExit(f"no fold*/metrics.json under {run}: give a bench.accuracy run directory")
    singles, averaged = zip(*(fold_figures(json.loads(path.read_text())) for path in folds))
    return {"folds": len(folds), "single_epochs": float(np.mean(singles)), "averaged": float(np.mean(averaged))}


def table(figures: dict[str, dict]) -> str:
    lines = ["| run | folds | mean UA of the averaged single epochs | UA of the averaged weights | gain (points) |",
             "| --- | --- | --- | --- | --- |"]
    for name, f in figures.items():
        lines.append(f"| {name} | {f['folds']} | {100 * f['single_epochs']:.1f}% | {100 * f['averaged']:.1f}% | "
                     f"{100 * (f['averaged'] - f['single_epochs']):+.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="bench.accuracy run directories")
    parser.add_argument("--output", type=Path, default=Path("bench/results/averaging.md"))
    args = parser.parse_args(argv)
    figures = {run.name: run_figures(run) for run in args.runs}
    text = (f"# What the weight averaging adds (validation actors)\n\nProduced by `python -m bench.averaging --runs "
            f"{' '.join(str(run) for run in args.runs)}`. UA = unweighted accuracy on each fold's validation actors, "
            "averaged over the folds.\n\n" + table(figures))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    return figures


if __name__ == "__main__":
    main()
