"""bench.corpora's scoring of a RAVDESS-only checkpoint on a held-out corpus, and its table, on generated files named
like TESS's (the benchmark itself needs the corpora and hours of training)."""

import json

import numpy as np
import pytest

from test_corpora import TESS, make_corpus

from bench import corpora as bench_corpora
from ser import RAVDESS_EMOTIONS


def test_a_held_out_corpus_is_scored_on_its_own_classes_and_tabled(random_checkpoint, tmp_path):
    tess = make_corpus(tmp_path / "tess", TESS)
    out = tmp_path / "results"
    metrics = bench_corpora.score_default("tess", str(tess), out / "ravdess_only" / "tess",
                                          model=str(random_checkpoint))
    restricted = metrics["restricted"]
    # TESS has no calm: the restricted argmax never says calm, and its classes are TESS's own.
    assert restricted["classes"] == [e for e in RAVDESS_EMOTIONS if e in {"fearful", "surprised", "neutral", "sad",
                                                                             "angry"}]
    assert restricted["per_class"]["calm"]["support"] == 0 and restricted["confusion_matrix"][0][1] == 0
    assert sum(row[1] for row in restricted["confusion_matrix"]) == 0
    assert 0 < restricted["top_class_share"] <= 1 and metrics["clips"]["test"] == len(TESS)
    assert json.loads((out / "ravdess_only" / "tess" / "metrics.json").read_text())["restricted"] == restricted
    table = bench_corpora.write_readme(bench_corpora.collect(out), out)
    assert "| ravdess_only | tess | 6 |" in table and (out / "README.md").read_text() == table


def _calibrated_metrics(seed: int, held_out: bool) -> dict:
    """A run's metrics as training writes them, from random logits with a known temperature and threshold."""
    from train import calibration
    from train.train import restricted_score, score

    rng = np.random.default_rng(seed)
    references = rng.integers(0, 8, 200)
    logits = rng.normal(size=(200, 8)) + 3 * np.eye(8)[references] * (rng.random(200) < 0.6)[:, None]
    labels = list(RAVDESS_EMOTIONS)
    metrics = {"clips": {"test": 200}, "labels": labels, "parameters": 1, "train_seconds": 1.0,
               **score(logits, references, labels),
               "calibration": {"temperature": 1.5, "before": calibration.report(logits * 1.5, references),
                               "after": calibration.report(logits, references), "confidence_threshold": 0.4,
                               "at_threshold": calibration.at_threshold(calibration.softmax(logits), references,
                                                                        0.4)}}
    if held_out:
        metrics["restricted"] = restricted_score(logits, references, labels)
    return metrics


def test_the_shipped_system_is_tabled_with_its_six_folds_calibration_and_risk_coverage(tmp_path):
    from train.cli import summarize

    out = tmp_path / "results"
    folds = {f"fold{k}": _calibrated_metrics(k, held_out=False) for k in range(1, 7)}
    for name, metrics in folds.items():
        (out / "shipped" / "ravdess_6fold" / name).mkdir(parents=True)
        (out / "shipped" / "ravdess_6fold" / name / "metrics.json").write_text(json.dumps(metrics))
    summary = summarize(folds, out / "shipped" / "ravdess_6fold", "emobox")
    after = summary["calibration"]["after"]
    assert after["ece"] == pytest.approx(np.mean([m["calibration"]["after"]["ece"] for m in folds.values()]))
    # Pooled: the ECE of the 1200 clips together, not the mean of six 200-clip ECEs; and its floor is lower.
    assert after["pooled_ece"] < after["ece"] and after["pooled_ece_sampling_floor"] < after["ece_sampling_floor"]
    tess = _calibrated_metrics(7, held_out=True)
    (out / "shipped" / "tess").mkdir(parents=True)
    (out / "shipped" / "tess" / "metrics.json").write_text(json.dumps(tess))
    table = bench_corpora.write_readme(bench_corpora.collect(out), out)
    ua = summary["unweighted_accuracy"]
    assert f"| shipped | 6 | {ua['mean']:.1%} ± {ua['std']:.1%} |" in table
    ece = tess["calibration"]
    assert (f"| {ece['before']['ece']:.3f} → {ece['after']['ece']:.3f} ({ece['after']['ece_sampling_floor']:.3f}) |"
            in table)  # the held-out corpus's row
    assert f"| {after['pooled_ece']:.3f} ({after['pooled_ece_sampling_floor']:.3f}) |" in table
    risk = next(line for line in table.splitlines() if line.startswith("| tess held out |"))
    at = tess["calibration"]["at_threshold"]
    assert risk.split(" | ")[1] == f"100% / {tess['accuracy']:.0%}"  # threshold 0 answers every clip
    assert risk.endswith(f"0.40: {at['coverage']:.0%} / {at['accuracy_answered']:.0%}, held back "
                         f"{at['accuracy_held_back']:.0%} |")
    assert any(line.startswith("| RAVDESS 6-fold |") for line in table.splitlines())


def test_a_recipe_run_on_several_seeds_is_summarized_over_them(tmp_path):
    out = tmp_path / "results"
    runs = {system: _calibrated_metrics(k, held_out=True)
            for k, system in enumerate(("shipped", "shipped_seed1", "shipped_seed2", "multi"))}
    for system, metrics in runs.items():
        (out / system / "tess").mkdir(parents=True)
        (out / system / "tess" / "metrics.json").write_text(json.dumps(metrics))
    table = bench_corpora.write_readme(bench_corpora.collect(out), out)
    summary = [line for line in table.splitlines() if line.startswith("| shipped | tess | 3 |")]
    ua = [runs[s]["restricted"]["unweighted_accuracy"] for s in ("shipped", "shipped_seed1", "shipped_seed2")]
    assert len(summary) == 1 and f"| {np.mean(ua):.1%} ± {np.std(ua, ddof=1):.1%} |" in summary[0]
    eces = [runs[s]["calibration"]["after"]["ece"] for s in ("shipped", "shipped_seed1", "shipped_seed2")]
    assert summary[0].endswith(f"| {min(eces):.3f}–{max(eces):.3f} |")
    assert not any(line.startswith("| multi | tess | ") and " ± " in line for line in table.splitlines())
