"""Benchmarks: accuracy, robustness, test-time averaging, speed, long audio and load. Each module is
`python -m bench.NAME`."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shown(path) -> str:
    """A path as a report shows it: relative to the repository when inside it, so results name no one's home."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
