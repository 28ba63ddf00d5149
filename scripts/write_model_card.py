"""Write model_card.md (and the embedded checkpoint's README.md) from the committed results.

    .venv/bin/python scripts/write_model_card.py
    .venv/bin/python scripts/write_model_card.py --results DIR --model DIR --print   # show a card, write nothing

The embedded checkpoint is the release of the multi-corpus recipe (`shipped` in `python -m bench.corpora`). Every
figure comes from a results file that a command in this repository writes: `needed` names each file with its
command, and the script stops, naming the missing ones, rather than write a card without their figures.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ser import DEFAULT_MODEL  # noqa: E402
from ser.card import RecipeResults, cross_corpus_evaluation, read_json, render_model_card  # noqa: E402

REPO_ID = "ser-project/ser-cnn"
RESULTS = ROOT / "bench" / "results"
HELD_OUT = ("tess", "emodb")
DATA = "--data ravdess=../shared/data/ravdess --data tess=../shared/data/tess --data emodb=~/data/emodb"
SHIPPED = f"python -m bench.corpora {DATA} --only ravdess_only shipped"
RELEASE = f"python -m train {DATA} --protocol full --epoch-clips 1440 --validation-actors 4 --output-dir bench/results/release"
BASELINE_FOLDS = "python -m bench.accuracy --data ../shared/data/ravdess --only default --protocols emobox"
SPEED = "python -m bench.speed --data ../shared/data/ravdess"
# The card's file size; the Hub shows every byte, and a short card is read.
MAX_BYTES = 6144


def needed(results: Path) -> dict[Path, str]:
    """Every results file the card reports -> the command that writes it."""
    corpora = results / "corpora"
    files = {results / "release" / "metrics.json": RELEASE,
             corpora / "shipped" / "ravdess_6fold" / "summary.json": SHIPPED,
             results / "accuracy" / "default_emobox" / "summary.json": BASELINE_FOLDS,
             results / "speed" / "speed.json": SPEED}
    for name in HELD_OUT:
        files[corpora / "shipped" / name / "metrics.json"] = SHIPPED
        files[corpora / "ravdess_only" / name / "metrics.json"] = SHIPPED
    return files


def require(files: dict[Path, str]) -> None:
    """SystemExit naming each missing file and the command that writes it."""
    missing = [f"  {path}\n    made by: {command}" for path, command in files.items() if not path.is_file()]
    if missing:
        raise SystemExit("the model card needs results that are missing:\n" + "\n".join(missing))


def speed_section(speed: dict) -> str:
    ours, anchor = speed["systems"]["ours"], speed["systems"]["anchor"]
    one = ours["latency"]["1"]["total"]["median_ms"]
    ratio = anchor["latency"]["1"]["total"]["median_ms"] / one
    return ("## Speed\n\n"
            f"{ours['size_on_disk_bytes'] / 1e6:.2f} MB of weights. End to end from a file on one CPU thread "
            f"({speed['machine']['cpu']}; `python -m bench.speed`): {one:.1f} ms median per clip, {ratio:.0f}x "
            "faster than a wav2vec2-large classifier.\n")


def build_card(results: Path = RESULTS, model_dir: Path = Path(DEFAULT_MODEL), repo_id: str = REPO_ID) -> str:
    """The card of the checkpoint in `model_dir` from the results under `results`. SystemExit when a file is
    missing or the checkpoint is not the release those results describe."""
    files = needed(results)
    require(files)
    six_fold_dir = results / "corpora" / "shipped" / "ravdess_6fold"
    six_fold = read_json(six_fold_dir / "summary.json")
    require({six_fold_dir / run / "metrics.json": SHIPPED for run in six_fold["runs"]})
    release = read_json(results / "release" / "metrics.json")
    config = json.loads((Path(model_dir) / "config.json").read_text())
    # A record from before multi-corpus training has no corpora to compare.
    trained = release.get("corpora", {}).get("train")
    if trained is not None and config.get("training_data") != trained:
        raise SystemExit(f"{model_dir} is not the release that {results / 'release' / 'metrics.json'} describes "
                         "(their training data differ): embed it first with "
                         "`.venv/bin/python scripts/embed_model.py bench/results/release/model`")
    ours = RecipeResults(
        six_fold=six_fold,
        held_out={name: read_json(results / "corpora" / "shipped" / name / "metrics.json") for name in HELD_OUT},
        folds=[read_json(six_fold_dir / run / "metrics.json") for run in six_fold["runs"]],
        other_seeds={name: [read_json(p) for p in sorted(results.glob(f"corpora/shipped_seed*/{name}/metrics.json"))]
                     for name in HELD_OUT})
    baseline = RecipeResults(
        six_fold=read_json(results / "accuracy" / "default_emobox" / "summary.json"),
        held_out={name: read_json(results / "corpora" / "ravdess_only" / name / "metrics.json")
                  for name in HELD_OUT})
    evaluation = cross_corpus_evaluation(ours, baseline, release, config, "RAVDESS-only (previous default)")
    speed = read_json(results / "speed" / "speed.json")
    parameters = speed["systems"]["ours"].get("parameters")
    if parameters and release.get("parameters") and parameters != release["parameters"]:
        print(f"warning: {results / 'speed' / 'speed.json'} timed a checkpoint of {parameters:,} parameters, the "
              f"release has {release['parameters']:,}: rerun `{SPEED}`", file=sys.stderr)
    return render_model_card(repo_id, config, release, sections=speed_section(speed), evaluation=evaluation,
                             bibtex=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results folder (default: bench/results)")
    parser.add_argument("--model", type=Path, default=Path(DEFAULT_MODEL),
                        help="the checkpoint folder (default: the embedded one, where the card is written)")
    parser.add_argument("--print", action="store_true", help="print the card and its size instead of writing it")
    args = parser.parse_args(argv)
    card = build_card(args.results, args.model)
    size = len(card.encode())
    if size > MAX_BYTES:
        raise SystemExit(f"the model card is {size} bytes, over {MAX_BYTES}: shorten it")
    if args.print:
        print(card)
        print(f"{size} bytes", file=sys.stderr)
        return
    (ROOT / "model_card.md").write_text(card)
    (args.model / "README.md").write_text(card)
    # The card shows no figure: ones left by earlier cards would describe other models.
    for figure in ("confusion_matrix.png", "cross_validation_confusion_matrix.png"):
        (args.model / figure).unlink(missing_ok=True)
    print(f"wrote {ROOT / 'model_card.md'} and {args.model / 'README.md'}")


if __name__ == "__main__":
    main()
