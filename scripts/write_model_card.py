"""Write model_card.md (and the embedded checkpoint's README.md) from the committed results.

    .venv/bin/python scripts/write_model_card.py

Every figure comes from a results file that a command in this repository writes:
bench/results/release/metrics.json (`python -m train --protocol full`), bench/results/accuracy/*/summary.json
(`python -m bench.accuracy`), bench/results/accuracy_rerun/default_emobox/summary.json (the same on another CPU,
`--output bench/results/accuracy_rerun`), bench/results/speed/speed.json (`python -m bench.speed`) and
bench/results/robustness/robustness.json (`python -m bench.robustness`).
"""

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ser import DEFAULT_MODEL  # noqa: E402
from ser.card import model_card_from_run, read_json  # noqa: E402

REPO_ID = "ser-project/ser-ravdess-cnn"
RESULTS = ROOT / "bench" / "results"
RELEASE = RESULTS / "release"
ACCURACY = RESULTS / "accuracy"
# Rows under the headline in the card's results table: (name, summary.json).
COMPARISONS = (
    ("this recipe", ACCURACY / "default_random" / "summary.json"),
    ("this recipe, rerun on another CPU", RESULTS / "accuracy_rerun" / "default_emobox" / "summary.json"),
    ("baseline: 1-D CNN over averaged MFCCs", ACCURACY / "cnn1d_emobox" / "summary.json"),
    ("baseline: Random Forest on pooled MFCC, chroma, contrast", ACCURACY / "rf_emobox" / "summary.json"),
    ("baseline: Random Forest on pooled MFCC, chroma, contrast", ACCURACY / "rf_random" / "summary.json"),
)
# The robustness conditions the card shows, with short names.
CONDITIONS = {"white_10db": "white noise 10 dB", "pink_10db": "pink noise 10 dB", "babble_10db": "babble 10 dB",
              "telephone": "telephone band", "mp3_32k": "MP3 32 kbit/s", "gain_-20db": "gain −20 dB",
              "clipping": "clipping"}


def robustness_section(robustness: dict) -> str:
    """The release model has no unseen actors left, so robustness is that of the same recipe's fold models."""
    summary = robustness["summary"]
    shown = [key for key in CONDITIONS if key in summary]
    return ("## Robustness\n\n"
            f"UA of the {len(robustness['folds'])} fold models on their unseen actors, clean and degraded "
            "(`python -m bench.robustness`). SNR is measured on the speech.\n\n"
            "| clean | " + " | ".join(CONDITIONS[key] for key in shown) + " |\n"
            + "| --- " * (len(shown) + 1) + "|\n"
            f"| {summary['clean']['unweighted_accuracy']:.1%} | "
            + " | ".join(f"{summary[key]['unweighted_accuracy']:.1%}" for key in shown) + " |\n\n")


def speed_section(speed: dict) -> str:
    ours, anchor = speed["systems"]["ours"], speed["systems"]["anchor"]
    one = ours["latency"]["1"]["total"]["median_ms"]
    ratio = anchor["latency"]["1"]["total"]["median_ms"] / one
    return ("## Speed\n\n"
            f"{ours['size_on_disk_bytes'] / 1e6:.2f} MB of weights. End to end from a file on one CPU thread "
            f"({speed['machine']['cpu']}; `python -m bench.speed`): {one:.1f} ms median per clip, {ratio:.0f}x "
            "faster than a wav2vec2-large classifier.\n\n")


def main():
    summary = ACCURACY / "default_emobox" / "summary.json"
    # A release trained on every actor scored nothing, so it has no confusion matrix of its own.
    scored = (RELEASE / "confusion_matrix.png").exists()
    images = {"checkpoint": "confusion_matrix.png"} if scored else {}
    if summary.exists():
        images["cross_validation"] = "cross_validation_confusion_matrix.png"
    comparisons = [(name, read_json(path)) for name, path in COMPARISONS if path.exists()]
    sections = ""
    robustness = read_json(RESULTS / "robustness" / "robustness.json")
    if robustness:
        sections += robustness_section(robustness)
    speed = read_json(RESULTS / "speed" / "speed.json")
    if speed:
        sections += speed_section(speed)
    card = model_card_from_run(REPO_ID, DEFAULT_MODEL, RELEASE, summary if summary.exists() else None, images,
                               comparisons, sections.rstrip("\n") + "\n" if sections else "")
    target = Path(DEFAULT_MODEL)
    # The copy at the repository root points its figures at the checkpoint folder, where they are copied below.
    folder = target.resolve().relative_to(ROOT).as_posix()
    root_card = card
    for image in images.values():
        root_card = root_card.replace(f"]({image})", f"]({folder}/{image})")
    (ROOT / "model_card.md").write_text(root_card)
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
