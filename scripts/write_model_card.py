"""Write model_card.md (and the embedded checkpoint's README.md) from the committed results.

    .venv/bin/python scripts/write_model_card.py

Every figure comes from a results file that a command in this repository writes:
bench/results/release/metrics.json (`python -m train --protocol full`), bench/results/accuracy/*/summary.json
(`python -m bench.accuracy`).
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ser import DEFAULT_MODEL  # noqa: E402
from ser.card import model_card_from_run  # noqa: E402

REPO_ID = "ser-project/ser-ravdess-mfcc-cnn"
RELEASE = ROOT / "bench" / "results" / "release"
ACCURACY = ROOT / "bench" / "results" / "accuracy"


def main():
    summary = ACCURACY / "default_emobox" / "summary.json"
    images = {"checkpoint": "confusion_matrix.png"}
    if summary.exists():
        images["cross_validation"] = "cross_validation_confusion_matrix.png"
    card = model_card_from_run(REPO_ID, DEFAULT_MODEL, RELEASE, summary if summary.exists() else None, images)
    baselines = ACCURACY / "README.md"
    if baselines.exists():
        table = baselines.read_text().split("\n\n", 2)[-1]
        card = card.replace("## Intended use and limitations",
                            "### Side by side with earlier designs (same data, same folds)\n\n"
                            "Produced by `python -m bench.accuracy`:\n\n" + table + "\n## Intended use and limitations", 1)
    (ROOT / "model_card.md").write_text(card)
    target = Path(DEFAULT_MODEL)
    (target / "README.md").write_text(card)
    shutil.copy(RELEASE / "confusion_matrix.png", target / "confusion_matrix.png")
    if summary.exists():
        shutil.copy(summary.parent / "confusion_matrix.png", target / "cross_validation_confusion_matrix.png")
    print(f"wrote {ROOT / 'model_card.md'} and {target / 'README.md'}")


if __name__ == "__main__":
    main()
