"""bench.averaging on the committed fold records of `bench.accuracy` runs (real training runs on RAVDESS)."""

import json

import numpy as np
import pytest
from conftest import ROOT

from bench import averaging

ACCURACY = ROOT / "bench" / "results" / "accuracy"


def test_the_averaging_gain_is_the_averaged_weights_against_the_single_epochs_they_average(tmp_path):
    run = ACCURACY / "swa15_emobox"
    figures = averaging.main(["--runs", str(run), "--output", str(tmp_path / "averaging.md")])["swa15_emobox"]
    folds = [json.loads((run / f"fold{i}" / "metrics.json").read_text()) for i in range(1, 7)]
    assert figures["folds"] == 6
    assert figures["single_epochs"] == pytest.approx(
        np.mean([np.mean(f["validation_unweighted_accuracy_per_epoch"][-15:]) for f in folds]))
    assert figures["averaged"] == pytest.approx(np.mean([f["final_validation_unweighted_accuracy"] for f in folds]))
    assert "| swa15_emobox | 6 |" in (tmp_path / "averaging.md").read_text()
    # The committed table is this command's output.
    committed = (ROOT / "bench" / "results" / "averaging.md").read_text()
    assert averaging.table({"swa15_emobox": figures}).splitlines()[-1] in committed


def test_a_run_that_kept_its_last_epoch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="averaged its last epochs"):
        averaging.run_figures(ACCURACY / "masks1_emobox")
    with pytest.raises(SystemExit, match="no fold"):
        averaging.run_figures(tmp_path)
