"""Embed a trained checkpoint as the package's default model (`ser/default_model`).

    .venv/bin/python scripts/embed_model.py runs/release/model

The checkpoint is loaded and written again with `save_pretrained`, so the folder gets this package's current
config format and code files (for `trust_remote_code` loads) beside the same weights. The model card in the
folder (README.md) is written by `scripts/write_model_card.py`.
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ser  # noqa: E402

KEEP = {"README.md", "cross_validation_confusion_matrix.png"}


def embed(source: str, target: Path = Path(ser.DEFAULT_MODEL)) -> None:
    model = ser.load_model(source)
    # Settings that the current config no longer has (an older checkpoint's) are left out.
    known = set(ser.SERConfig().to_dict()) - {"model_type", "transformers_version"}
    config = ser.SERConfig(**{k: v for k, v in model.config.to_dict().items() if k in known})
    fresh = ser.SERForAudioClassification(config)
    fresh.load_state_dict(model.state_dict())
    with tempfile.TemporaryDirectory() as staging:  # the source may be the target itself
        fresh.save_pretrained(staging)
        ser.new_feature_extractor(config).save_pretrained(staging)
        for old in target.iterdir():
            if old.name not in KEEP:
                old.unlink()
        for new in Path(staging).iterdir():
            (target / new.name).write_bytes(new.read_bytes())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a checkpoint folder written by save_pretrained (e.g. runs/release/model)")
    embed(parser.parse_args().checkpoint)
