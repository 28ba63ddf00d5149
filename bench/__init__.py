"""Benchmarks: accuracy, ablation, robustness, speed, long audio and load. Each module is `python -m bench.NAME`."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shown(path) -> str:
    """A path as a report shows it: relative to the repository when inside it, so results name no one's home."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# The default model config until 2026-11-26 (MFCC+deltas, channels 24, 48, 96, 192), which trained contiguous. The
# systems and screen rows measured under it name it, so their committed results still repeat now that the default
# is log-mel at 2x channels, trained channels-last.
MFCC_MODEL = {"features": "mfcc", "n_mfcc": 40, "n_mels": 64, "deltas": True, "channels": [24, 48, 96, 192]}
