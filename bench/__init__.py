"""Benchmarks: accuracy, robustness, test-time averaging, speed, long audio and load. Each module is
`python -m bench.NAME`."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_actors(metrics: dict) -> dict[str, list[int]]:
    """The RAVDESS actors of each split of a training run's metrics.json (its "speakers", or an older run's
    "actors")."""
    if "speakers" not in metrics:
        return metrics.get("actors", {})
    return {split: [int(s.split("/", 1)[1]) for s in speakers if s.startswith("ravdess/")]
            for split, speakers in metrics["speakers"].items()}


def shown(path) -> str:
    """A path as a report shows it: relative to the repository when inside it, so results name no one's home."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
