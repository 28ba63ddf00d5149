"""Write model_card.md (and the embedded checkpoint's README.md) from the committed results.

    .venv/bin/python scripts/write_model_card.py

Every figure comes from a results file that a command in this repository writes:
bench/results/release/metrics.json (`python -m train --protocol full`), bench/results/accuracy/*/summary.json
(`python -m bench.accuracy`), bench/results/speed/speed.json (`python -m bench.speed`),
bench/results/robustness/robustness.json (`python -m bench.robustness`), bench/results/accuracy_rerun/*/summary.json
(`python -m bench.accuracy --output bench/results/accuracy_rerun`, on another machine).
"""

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ser import DEFAULT_MODEL  # noqa: E402
from ser.card import model_card_from_run  # noqa: E402

REPO_ID = "ser-project/ser-ravdess-cnn"
RELEASE = ROOT / "bench" / "results" / "release"
ACCURACY = ROOT / "bench" / "results" / "accuracy"
RERUN = ROOT / "bench" / "results" / "accuracy_rerun"


def speed_section(speed: dict) -> str:
    ours, anchor = speed["systems"]["ours"], speed["systems"]["anchor"]
    one, all_ = ours["latency"]["1"]["total"], ours["latency"][str(max(map(int, ours["latency"])))]["total"]
    ratio = anchor["latency"]["1"]["total"]["median_ms"] / one["median_ms"]
    return ("## Size and speed\n\n"
            f"{ours['parameters']:,} parameters, {ours['size_on_disk_bytes'] / 1e6:.2f} MB of safetensors weights, "
            f"{ours['macs'] / 1e6:.0f} M multiply-accumulates per 3.5 s clip. End to end on a CPU (file decoding, "
            f"resampling, features and model; `python -m bench.speed`, {speed['machine']['cpu']}, {speed['machine']['usable_cores']} cores): "
            f"median {one['median_ms']:.1f} ms on 1 thread, {all_['median_ms']:.1f} ms on all cores; "
            f"{ratio:.0f}x faster than a wav2vec2-large-xlsr classifier (315M parameters) on the same clip.\n\n")


CARD_CONDITIONS = ("white_10db", "pink_10db", "babble_10db", "telephone", "mp3_32k", "gain_-20db", "clipping")


def robustness_section(robustness: dict) -> str:
    """The release model has no unseen actors left to test on, so noise robustness is that of the same recipe's
    EmoBox fold models, each on its own unseen actors."""
    summary, folds = robustness["summary"], len(robustness["folds"])
    shown = [key for key in CARD_CONDITIONS if key in summary]
    rows = "".join(f"| {key} ({robustness['conditions'][key]}) | {summary[key]['unweighted_accuracy']:.1%} | "
                   f"{summary[key]['drop_points']:+.1f} |\n" for key in shown)
    hard = [robustness["conditions"][key] for key in shown if summary[key]["drop_points"] > 10]
    warning = f" Expect these to be judged much less reliably: {'; '.join(hard)}." if hard else ""
    return ("## Robustness\n\n"
            f"Unweighted accuracy of this recipe's EmoBox fold models on their unseen actors, mean over {folds} "
            f"fold{'s' * (folds > 1)}, clean and degraded (`{robustness['command']}`); the drop is in points of UA "
            f"(positive: worse).{warning}\n\n"
            "| condition | UA | drop vs clean (points) |\n| --- | --- | --- |\n"
            f"| clean | {summary['clean']['unweighted_accuracy']:.1%} | – |\n" + rows + "\n")


def test_time_section(speeds: list[float], tta: dict, folds: Path) -> str:
    """The optional test-time averaging (`test_time_speeds`): what the checkpoint does, and what it would do on the
    6 folds' test actors."""
    shipped, one = tta[f"test: {tta['candidate']}"], tta["test: one pass"]
    figures = ", ".join(f"{name} {shipped[key]['mean']:.1%}" for name, key in
                        (("UA", "unweighted_accuracy"), ("WA", "accuracy"), ("macro-F1", "macro_f1")))
    how = ("This checkpoint averages its class probabilities over the clip and copies of it played at "
           f"{' and '.join(f'{s:g}x' for s in speeds)} speed (`test_time_speeds` in config.json; set it to `[]` for "
           "one pass)." if speeds else
           "This checkpoint predicts in one pass. Setting `model.config.test_time_speeds = [0.9, 1.1]` makes it "
           "average its class probabilities over the clip and copies of it played at 0.9x and 1.1x speed, for "
           "three windows per clip through the network instead of one.")
    return ("### Optional: test-time averaging\n\n" + how + " The figures above are in one pass. On the same 6 "
            f"fold models and test actors, the averaging gives {figures} (UA ± "
            f"{shipped['unweighted_accuracy']['std']:.1%} across folds), against UA "
            f"{one['unweighted_accuracy']['mean']:.1%} in one pass (`python -m bench.tta --data ../shared/data/ravdess "
            f"--folds {folds.relative_to(ROOT)} --candidate \"{tta['candidate']}\"`).\n\n")


def rerun_section(committed: dict, rerun: dict, command: str) -> str:
    """The same 6-fold run repeated on another CPU: how far a user who repeats it should expect the figures to move."""
    moves = [abs(rerun["runs"][fold]["unweighted_accuracy"] - committed["runs"][fold]["unweighted_accuracy"])
             for fold in committed["runs"]]
    cpus = ", ".join(rerun.get("cpus", [])) or "CPU not recorded"
    return ("### Repeating the 6-fold figures\n\n"
            f"The same command rerun on another machine ({cpus}; `{command}`) gave UA "
            f"{rerun['unweighted_accuracy']['mean']:.1%} ± "
            f"{rerun['unweighted_accuracy']['std']:.1%} against {committed['unweighted_accuracy']['mean']:.1%} ± "
            f"{committed['unweighted_accuracy']['std']:.1%} above. CPU families round floats differently and 60 "
            f"epochs amplify that, so single folds moved by up to {max(moves) * 100:.1f} points; a run repeats bit "
            "for bit only on the kind of CPU that made it.\n\n")


def before_limitations(card: str, section: str) -> str:
    return card.replace("## Intended use and limitations", section + "## Intended use and limitations", 1)


def main():
    summary = ACCURACY / "default_emobox" / "summary.json"
    # A release trained on every actor scored nothing, so it has no confusion matrix of its own.
    scored = (RELEASE / "confusion_matrix.png").exists()
    images = {"checkpoint": "confusion_matrix.png"} if scored else {}
    if summary.exists():
        images["cross_validation"] = "cross_validation_confusion_matrix.png"
    card = model_card_from_run(REPO_ID, DEFAULT_MODEL, RELEASE, summary if summary.exists() else None, images)
    speeds = json.loads((Path(DEFAULT_MODEL) / "config.json").read_text()).get("test_time_speeds")
    tta = summary.parent / "tta.json"
    if tta.exists():
        card = before_limitations(card, test_time_section(speeds, json.loads(tta.read_text()), summary.parent))
    rerun = RERUN / "default_emobox" / "summary.json"
    if summary.exists() and rerun.exists():
        command = ("python -m bench.accuracy --data ../shared/data/ravdess --only default --protocols emobox "
                   f"--output {RERUN.relative_to(ROOT)}")
        card = before_limitations(card, rerun_section(json.loads(summary.read_text()), json.loads(rerun.read_text()),
                                                      command))
    baselines = ACCURACY / "README.md"
    if baselines.exists():
        legend_and_table = "\n\n".join(baselines.read_text().split("\n\n")[-2:])
        card = before_limitations(card, "### Side by side with earlier designs (same data, same folds)\n\n"
                                        "Produced by `python -m bench.accuracy`. " + legend_and_table + "\n")
    speed = ROOT / "bench" / "results" / "speed" / "speed.json"
    if speed.exists():
        card = before_limitations(card, speed_section(json.loads(speed.read_text())))
    robustness = ROOT / "bench" / "results" / "robustness" / "robustness.json"
    if robustness.exists():
        card = before_limitations(card, robustness_section(json.loads(robustness.read_text())))
    (ROOT / "model_card.md").write_text(card)
    target = Path(DEFAULT_MODEL)
    (target / "README.md").write_text(card)
    if scored:
        shutil.copy(RELEASE / "confusion_matrix.png", target / "confusion_matrix.png")
    else:
        (target / "confusion_matrix.png").unlink(missing_ok=True)
    if summary.exists():
        shutil.copy(summary.parent / "confusion_matrix.png", target / "cross_validation_confusion_matrix.png")
    print(f"wrote {ROOT / 'model_card.md'} and {target / 'README.md'}")


if __name__ == "__main__":
    main()
