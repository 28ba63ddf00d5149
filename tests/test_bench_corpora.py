"""bench.corpora's scoring of a RAVDESS-only checkpoint on a held-out corpus, and its table, on generated files named
like TESS's (the benchmark itself needs the corpora and hours of training)."""

import json

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
