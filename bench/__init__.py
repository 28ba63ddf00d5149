"""Benchmarks: accuracy, ablation, robustness, speed, long audio and load. Each module is `python -m bench.NAME`."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shown(path) -> str:
    """A path as a report shows it: relative to the repository when inside it, so results name no one's home."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# The default model config until 2026-11-26 (MFCC+deltas, channels 24, 48, 96, 192, two SpecAugment masks of each
# kind), which trained contiguous. The systems and screen rows measured under it name it, so their committed results
# still repeat under later defaults.
MFCC_MODEL = {"features": "mfcc", "n_mfcc": 40, "n_mels": 64, "deltas": True, "channels": [24, 48, 96, 192],
              "num_masks": 2}

# The default from 2026-11-26 to 2026-11-27 (log-mel, 40 bands, channels 32, 64, 128, 256, two SpecAugment masks of
# each kind, trained channels-last; `logmel40_2x` in its pre-registration), spelled out so that the candidates built
# on it keep their meaning when the default changes.
LOGMEL40_2X_MODEL = {**MFCC_MODEL, "features": "logmel", "n_mels": 40, "deltas": False, "channels": [32, 64, 128, 256]}

# The default since 2026-11-27 (LOGMEL40_2X_MODEL with one SpecAugment mask of each kind; `masks1` in its
# pre-registration), spelled out for the candidates built on it.
MASKS1_MODEL = {**LOGMEL40_2X_MODEL, "num_masks": 1}
