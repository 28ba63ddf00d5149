"""A tiny real training run on the fixture clips: the loss goes down and every artifact is written."""

import json
import platform
import subprocess
from pathlib import Path

import numpy as np

import sys

import pytest
import torch
from conftest import FIXTURE, ROOT
from PIL import Image
from transformers import AutoModelForAudioClassification

import ser
from train.cli import main

pytestmark = pytest.mark.slow  # real training runs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    main(["--data", str(FIXTURE), "--protocol", "full", "--validation-actors", "2", "--epochs", "6",
          "--batch-size", "8", "--learning-rate", "3e-3", "--no-augment", "pitch", "stretch", "--output-dir", str(out)])
    return out


def test_training_lowers_the_loss(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    losses = metrics["train_loss_per_epoch"]
    assert len(losses) == 6
    assert min(losses[-2:]) < losses[0]


def test_training_writes_every_artifact(tiny_run):
    for name in ("metrics.json", "classification_report.txt", "confusion_matrix.png", "learning_curves.png"):
        assert (tiny_run / name).stat().st_size > 0, name
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "modeling_ser.py",
                 "configuration_ser.py"):
        assert (tiny_run / "model" / name).exists(), name
    assert not list((tiny_run / "model").glob("*.bin"))
    assert Image.open(tiny_run / "confusion_matrix.png").size[0] > 300
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["evaluated_on"] == "validation"
    assert not set(metrics["speakers"]["train"]) & set(metrics["speakers"]["validation"])
    assert metrics["corpora"]["train"] == {"ravdess": {"clips": metrics["clips"]["train"],
                                                       "speakers": len(metrics["speakers"]["train"])}}
    config = json.loads((tiny_run / "model" / "config.json").read_text())
    assert config["training_data"] == metrics["corpora"]["train"]  # the checkpoint says what trained it
    # The temperature is fitted on the validation actors and travels in the config; the figures say what it did.
    assert metrics["temperature"]["fitted_on"] == "validation"
    assert config["calibration_temperature"] == pytest.approx(metrics["temperature"]["temperature"])
    assert config["calibration_temperature"] > 0
    assert set(metrics["calibration"]) == {"temperature", "before", "after", "confidence_threshold", "at_threshold"}
    assert metrics["calibration"]["at_threshold"]["threshold"] == config["confidence_threshold"]
    assert config["confidence_threshold"] == metrics["temperature"]["confidence_threshold"]  # chosen on validation
    assert [r["coverage"] for r in metrics["calibration"]["after"]["risk_coverage"]][0] == 1.0
    assert metrics["calibration"]["after"]["nll"] > 0 and 0 <= metrics["calibration"]["after"]["ece"] <= 1
    assert (tiny_run / "reliability.png").stat().st_size > 0
    assert set(metrics["per_class"]) == set(ser.RAVDESS_EMOTIONS)
    assert 0 <= metrics["unweighted_accuracy"] <= 1
    assert len(metrics["confusion_matrix"]) == 8
    assert "unweighted accuracy (UA)" in (tiny_run / "classification_report.txt").read_text()
    # x86 Linux names the CPU in /proc/cpuinfo; ARM Linux and other systems fall back to what `platform` knows.
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    cpu = names[0] if names else platform.processor() or platform.machine()
    assert metrics["machine"]["cpu"] == cpu and metrics["machine"]["torch"] == torch.__version__
    # The commit of the code that trained it, so the run can be repeated from a checkout of that commit.
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert metrics["commit"] is None if not head else metrics["commit"].removesuffix("-dirty") == head


def test_a_summary_names_the_cpus_its_runs_trained_on(tiny_run, tmp_path):
    from train.cli import summarize

    metrics = json.loads((tiny_run / "metrics.json").read_text())
    older = {k: v for k, v in metrics.items() if k != "machine"}  # a record from before the CPU was kept
    summary = summarize({"fold1": metrics, "fold2": older}, tmp_path, "emobox")
    assert summary["cpus"] == [metrics["machine"]["cpu"]]
    assert f"Trained on: {metrics['machine']['cpu']}." in (tmp_path / "summary.md").read_text()
    assert summarize({"fold2": older}, tmp_path, "emobox")["cpus"] == []
    assert "Trained on" not in (tmp_path / "summary.md").read_text()


def test_trained_checkpoint_has_normalization_from_the_training_data(tiny_run):
    model = AutoModelForAudioClassification.from_pretrained(tiny_run / "model")
    mean = model.front_end.feature_mean
    assert mean.abs().sum() > 0 and (model.front_end.feature_std != 1).any()


def test_babble_adds_other_voices_at_0_to_20_db_snr():
    from train import corpora, data

    clips = corpora.load_ravdess(str(FIXTURE))
    plain = data.AugmentedSplit(clips, None, 16000)
    babbled = data.AugmentedSplit(clips, None, 16000, babble=1.0)
    for i in range(0, len(plain), 4):
        clean, noisy = plain[i]["input_values"], babbled[i]["input_values"]
        assert noisy.shape == clean.shape and babbled[i]["emotion"] == plain[i]["emotion"]
        added = noisy - clean
        snr_db = 10 * np.log10(np.mean(clean ** 2) / np.mean(added ** 2))
        assert -0.01 <= snr_db <= 20.01


def test_pitch_augmentation_shifts_by_up_to_two_semitones():
    """A 200 Hz tone comes out between 2 semitones below and above it, and uses the range: over 30 draws, some shift
    lands beyond three quarters of the widest."""
    import random

    from train import corpora, data

    rate = 16000
    tone = np.sin(2 * np.pi * 200.0 * np.arange(rate) / rate).astype(np.float32)
    semitones = 2.0
    augment = data.build_augmenter(noise=False, pitch=True, stretch=False, shift=False, degrade=False,
                                   probability=1.0)
    random.seed(0)
    np.random.seed(0)
    shifts = []
    for _ in range(30):
        shifted = augment(tone, sample_rate=rate)[rate // 4: -rate // 4]  # the middle: no edge effects
        spectrum = np.abs(np.fft.rfft(shifted * np.hanning(len(shifted)), n=16 * len(shifted)))
        peak_hz = np.argmax(spectrum) * rate / (16 * len(shifted))
        shifts.append(12 * np.log2(peak_hz / 200.0))
    assert max(abs(s) for s in shifts) <= semitones + 0.1
    assert max(abs(s) for s in shifts) > 0.75 * semitones


def test_degrade_augmentation_changes_the_training_clips_and_trains(tmp_path):
    from train import corpora, data

    clean = data.AugmentedSplit(corpora.load_ravdess(str(FIXTURE)), None, 16000)[0]["input_values"]
    augment = data.build_augmenter(noise=False, pitch=False, stretch=False, shift=False, probability=1.0, degrade=True)
    degraded = augment(clean, sample_rate=16000)
    assert degraded.shape == clean.shape and not np.allclose(degraded, clean, atol=1e-3)
    main(["--data", str(FIXTURE), "--protocol", "full", "--epochs", "1", "--batch-size", "8",
          "--no-augment", "pitch", "stretch", "--output-dir", str(tmp_path)])
    recipe = json.loads((tmp_path / "metrics.json").read_text())["recipe"]
    assert "degrade" in recipe["augment"] and recipe["workers"] == 2  # the default recipe


def test_training_leaves_the_augmentation_workers_their_cores_and_restores_the_thread_count(tmp_path, monkeypatch):
    import torch

    from train.train import available_cores

    requested = []
    set_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (requested.append(n), set_threads(n)))
    before = torch.get_num_threads()
    main(["--data", str(FIXTURE), "--protocol", "full", "--epochs", "1", "--batch-size", "8", "--workers", "1",
          "--no-augment", "pitch", "stretch", "--output-dir", str(tmp_path)])
    assert requested[0] == max(1, available_cores() - 1)
    assert torch.get_num_threads() == before


def test_training_without_validation_actors_trains_on_every_actor_and_evaluates_nothing_on_the_way(tmp_path):
    run = main(["--data", str(FIXTURE), "--protocol", "full", "--validation-actors", "0", "--epochs", "2",
                "--batch-size", "8", "--workers", "0", "--no-augment", "pitch", "stretch", "--output-dir", str(tmp_path)])
    metrics = run["seed0"]
    fixture_actors = sorted({f"ravdess/{clip.parent.name.split('_')[1]}" for clip in FIXTURE.glob("Actor_*/*.flac")})
    assert metrics["speakers"] == {"train": fixture_actors}
    assert metrics["evaluated_on"] is None and "unweighted_accuracy" not in metrics
    assert metrics["validation_unweighted_accuracy_per_epoch"] == [] and len(metrics["train_loss_per_epoch"]) == 2
    assert metrics["final_validation_unweighted_accuracy"] is None
    assert (tmp_path / "model" / "model.safetensors").is_file() and (tmp_path / "learning_curves.png").is_file()
    assert not (tmp_path / "confusion_matrix.png").exists()  # nothing was scored


def test_resume_keeps_finished_runs_of_the_same_recipe_and_trains_the_rest(tmp_path):
    import shutil

    args = ["--data", str(FIXTURE), "--protocol", "full", "--seeds", "0", "1", "--epochs", "1", "--batch-size", "8",
            "--workers", "0", "--no-augment", "pitch", "stretch", "--output-dir", str(tmp_path)]
    first = main(args)
    weights = {name: tmp_path / name / "model" / "model.safetensors" for name in ("seed0", "seed1")}
    written = {name: path.stat().st_mtime_ns for name, path in weights.items()}
    shutil.rmtree(tmp_path / "seed1")  # an interrupted run: seed1 never finished
    # A record written before an option existed is the same recipe: the run had the option's default.
    metrics_file = tmp_path / "seed0" / "metrics.json"
    record = json.loads(metrics_file.read_text())
    del record["recipe"]["class_weights"]
    metrics_file.write_text(json.dumps(record))
    first["seed0"] = record

    resumed = main([*args, "--resume"])
    assert weights["seed0"].stat().st_mtime_ns == written["seed0"]  # kept, not trained again
    assert resumed["seed0"] == first["seed0"]
    assert weights["seed1"].is_file()  # trained now

    kept = {name: path.stat().st_mtime_ns for name, path in weights.items()}
    main([*args[:-2], "--epochs", "2", "--output-dir", str(tmp_path), "--resume"])  # another recipe: nothing kept
    assert all(path.stat().st_mtime_ns != kept[name] for name, path in weights.items())


def test_weight_average_keeps_the_mean_of_the_last_epochs_and_refits_batchnorm():
    import torch
    from types import SimpleNamespace

    from train.train import WeightAverage

    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    average = WeightAverage(model, epochs=2, total_epochs=3)
    for epoch, value in enumerate([1.0, 2.0, 4.0], start=1):
        with torch.no_grad():
            model[0].weight.fill_(value)
        average.on_epoch_end(None, SimpleNamespace(epoch=float(epoch)), None, model=model)
    inputs = torch.randn(64, 2)
    mask = torch.ones(32, 2, dtype=torch.long)
    # The rows are centred by the mask first, as the model's front end would do with them.
    average.apply(model, [{"input_values": inputs[:32], "attention_mask": mask},
                          {"input_values": inputs[32:], "attention_mask": mask}])
    inputs = inputs - inputs.mean(dim=1, keepdim=True)
    assert torch.allclose(model[0].weight, torch.full((3, 2), 3.0))  # epochs 2 and 3, not epoch 1
    hidden = model[0](inputs)
    assert torch.allclose(model[1].running_mean, hidden.mean(0), atol=1e-5)  # statistics of the averaged weights
    assert not model.training
    from train.train import Recipe

    with pytest.raises(ValueError, match="last 4 of 3"):
        Recipe(epochs=3, average_last_epochs=4)
    assert Recipe(epochs=60).average_last_epochs == 15  # a quarter of the epochs by default


def test_training_can_keep_the_average_of_the_last_epochs_weights(tmp_path):
    from safetensors.torch import load_file

    args = ["--data", str(FIXTURE), "--protocol", "full", "--validation-actors", "2", "--epochs", "3", "--batch-size",
            "8", "--workers", "0", "--no-augment", "pitch", "stretch"]
    main([*args, "--output-dir", str(tmp_path / "last")])
    main([*args, "--average-last-epochs", "2", "--output-dir", str(tmp_path / "averaged")])
    last, averaged = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("last", "averaged"))
    assert averaged["recipe"]["average_last_epochs"] == 2
    # The same training (averaging draws no random numbers), then different weights kept.
    assert averaged["train_loss_per_epoch"] == last["train_loss_per_epoch"]
    assert len(averaged["validation_unweighted_accuracy_per_epoch"]) == 3
    assert last["final_validation_unweighted_accuracy"] == last["validation_unweighted_accuracy_per_epoch"][-1]
    assert averaged["final_validation_unweighted_accuracy"] == averaged["unweighted_accuracy"]  # scored after it
    weights = [load_file(tmp_path / name / "model" / "model.safetensors") for name in ("last", "averaged")]
    assert any(not (weights[0][k] == weights[1][k]).all() for k in weights[0])




def test_the_cli_offers_the_options_a_user_needs_and_no_more():
    from train.cli import model_config, parse_args
    from train.train import Recipe

    help_text = subprocess.run([sys.executable, "-m", "train", "--help"], cwd=ROOT, capture_output=True,
                               text=True).stdout
    options = {line.split()[0].rstrip(",") for line in help_text.splitlines() if line.startswith("  -")}
    assert len(options) <= 22, sorted(options)
    args = parse_args(["--output-dir", "x", "--features", "mfcc", "--no-augment", "spec-augment", "degrade",
                       "--model-config", '{"channels": [8, 16], "pooling": "attention"}'])
    config = ser.SERConfig(**model_config(args))
    assert (config.features, config.deltas, config.pooling, config.spec_augment, config.channels) == (
        "mfcc", True, "attention", False, [8, 16])
    assert model_config(parse_args(["--output-dir", "x"])) == {}  # the defaults are SERConfig's own
    recipe = Recipe(augment=("degrade", "noise"))
    assert recipe.augment == ("noise", "degrade")
    assert "degrade" not in Recipe(augment=tuple(a for a in Recipe().augment if a != "degrade")).augment


def test_train_accuracy_counts_training_batches_only(tmp_path):
    from train import corpora, data
    from train.train import Recipe, TrainAccuracy, build

    splits = data.split_dataset(corpora.load_corpora({"ravdess": str(FIXTURE)}), "full", validation_actors=2)
    _, trainer, _ = build(splits, Recipe(epochs=1, workers=0, augment=()), tmp_path,
                          dict(enumerate(ser.RAVDESS_EMOTIONS)))
    accuracy = next(c for c in trainer.callback_handler.callbacks if isinstance(c, TrainAccuracy))
    trainer.evaluate()
    assert accuracy.seen == 0
    trainer.train()
    logged = [h for h in trainer.state.log_history if "train_accuracy" in h]
    assert len(logged) == 1 and accuracy.seen == 0
    assert (logged[0]["train_accuracy"] * len(splits["train"])).is_integer()
