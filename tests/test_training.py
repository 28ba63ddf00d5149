"""A tiny real training run on the fixture clips: the loss goes down and every artifact is written."""

import json
import platform
from pathlib import Path

import numpy as np

import pytest
import torch
from conftest import FIXTURE, ROOT
from PIL import Image
from transformers import AutoModelForAudioClassification

import ser
from train.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    main(["--data", str(FIXTURE), "--protocol", "full", "--validation-actors", "2", "--epochs", "6",
          "--batch-size", "8", "--learning-rate", "3e-3", "--no-pitch", "--no-stretch", "--output-dir", str(out)])
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
    assert not set(metrics["actors"]["train"]) & set(metrics["actors"]["validation"])
    assert set(metrics["per_class"]) == set(ser.RAVDESS_EMOTIONS)
    assert 0 <= metrics["unweighted_accuracy"] <= 1
    assert len(metrics["confusion_matrix"]) == 8
    assert "unweighted accuracy (UA)" in (tiny_run / "classification_report.txt").read_text()
    # x86 Linux names the CPU in /proc/cpuinfo; ARM Linux and other systems fall back to what `platform` knows.
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    cpu = names[0] if names else platform.processor() or platform.machine()
    assert metrics["machine"]["cpu"] == cpu and metrics["machine"]["torch"] == torch.__version__


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


def test_mixup_mixes_two_training_clips_and_their_labels():
    from train import data

    clips = data.load_ravdess(str(FIXTURE))
    plain = data.AugmentedSplit(clips, None, 16000)
    mixed = data.AugmentedSplit(clips, None, 16000, mixup=0.4)
    rows = [mixed[i] for i in range(len(mixed))]
    for i, row in enumerate(rows):
        assert row["emotion"].shape == (8,) and abs(row["emotion"].sum() - 1) < 1e-5
        assert row["emotion"][plain[i]["emotion"]] > 0  # the row's own class keeps its share
    assert sum((row["emotion"] > 0).sum() == 2 for row in rows) >= len(rows) // 2
    assert any(len(r["input_values"]) != len(plain[i]["input_values"])
               or not (r["input_values"] == plain[i]["input_values"]).all() for i, r in enumerate(rows))


def test_training_with_mixup_runs_on_soft_labels(tmp_path):
    main(["--data", str(FIXTURE), "--protocol", "full", "--epochs", "2", "--batch-size", "8", "--mixup", "0.4",
          "--no-pitch", "--no-stretch", "--output-dir", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["recipe"]["mixup"] == 0.4 and len(metrics["train_loss_per_epoch"]) == 2


def test_babble_adds_other_voices_at_0_to_20_db_snr():
    from train import data

    clips = data.load_ravdess(str(FIXTURE))
    plain = data.AugmentedSplit(clips, None, 16000)
    babbled = data.AugmentedSplit(clips, None, 16000, babble=1.0)
    for i in range(0, len(plain), 4):
        clean, noisy = plain[i]["input_values"], babbled[i]["input_values"]
        assert noisy.shape == clean.shape and babbled[i]["emotion"] == plain[i]["emotion"]
        added = noisy - clean
        snr_db = 10 * np.log10(np.mean(clean ** 2) / np.mean(added ** 2))
        assert -0.01 <= snr_db <= 20.01


def test_speech_bounds_frame_the_speech_between_silences():
    from train import data

    rng = np.random.default_rng(0)
    wave = np.concatenate([np.zeros(8000), 0.3 * rng.standard_normal(16000), np.zeros(8000)]).astype(np.float32)
    (start, end), = data.speech_bounds([wave], 16000)
    assert abs(start - 8000) <= 400 and abs(end - 24000) <= 400  # within a 25 ms frame


def test_speech_only_babble_is_a_crowd_without_pauses():
    """Babble from talkers cut to their speech leaves (almost) no quiet frames; whole clips bring their silences."""
    import random

    from ser.audio import frame_levels
    from train import data

    clips = data.load_ravdess(str(FIXTURE))
    plain = data.AugmentedSplit(clips, None, 16000)

    def quiet_share(speech_only):
        random.seed(0)
        babbled = data.AugmentedSplit(clips, None, 16000, babble=1.0, babble_speech_only=speech_only)
        shares = []
        for i in range(len(plain)):
            levels = frame_levels(babbled[i]["input_values"] - plain[i]["input_values"], 16000)
            shares.append(np.mean(levels < np.median(levels) - 20))
        return np.mean(shares)

    dense, gappy = quiet_share(True), quiet_share(False)
    assert dense < 0.02 and gappy > 3 * dense, (dense, gappy)


def test_babble_probability_follows_degrade_and_the_cli_records_it(tmp_path):
    from train.train import Recipe, babble_probability

    assert babble_probability(Recipe()) == Recipe().augment_probability  # unset: the other augmentations' share
    assert babble_probability(Recipe(babble_probability=0.5)) == 0.5
    assert babble_probability(Recipe(degrade=False, babble_probability=0.5)) == 0.0
    main(["--data", str(FIXTURE), "--protocol", "full", "--epochs", "1", "--batch-size", "8", "--no-pitch",
          "--no-stretch", "--babble-probability", "0.5", "--babble-speech-only", "--output-dir", str(tmp_path)])
    recipe = json.loads((tmp_path / "metrics.json").read_text())["recipe"]
    assert recipe["babble_probability"] == 0.5 and recipe["babble_speech_only"] is True


@pytest.mark.parametrize("semitones", [2.0, 4.0])
def test_pitch_augmentation_shifts_by_up_to_the_semitones_given(semitones):
    """A 200 Hz tone comes out between `semitones` below and above it, and uses the range: over 30 draws, some shift
    lands beyond three quarters of the widest."""
    import random

    from train import data

    rate = 16000
    tone = np.sin(2 * np.pi * 200.0 * np.arange(rate) / rate).astype(np.float32)
    augment = data.build_augmenter(noise=False, pitch=True, stretch=False, shift=False, probability=1.0,
                                   pitch_semitones=semitones)
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
    from train import data

    clean = data.AugmentedSplit(data.load_ravdess(str(FIXTURE)), None, 16000)[0]["input_values"]
    augment = data.build_augmenter(noise=False, pitch=False, stretch=False, shift=False, probability=1.0, degrade=True)
    degraded = augment(clean, sample_rate=16000)
    assert degraded.shape == clean.shape and not np.allclose(degraded, clean, atol=1e-3)
    main(["--data", str(FIXTURE), "--protocol", "full", "--epochs", "1", "--batch-size", "8",
          "--no-pitch", "--no-stretch", "--output-dir", str(tmp_path)])
    recipe = json.loads((tmp_path / "metrics.json").read_text())["recipe"]
    assert recipe["degrade"] is True and recipe["workers"] == 2  # the default recipe


def test_the_previous_recipes_are_still_one_option_away():
    from bench.ablation import TRAINER_VARIANTS
    from bench.accuracy import CLEAN40, SYSTEMS
    from ser import SERConfig
    from train.cli import parse_args
    from train.train import Recipe

    def parsed(system):
        args = parse_args(["--output-dir", "x", *SYSTEMS[system]])
        return args, SERConfig(**json.loads(args.model_config or "{}"))

    args = parse_args(["--output-dir", "x", *CLEAN40])
    assert (args.epochs, args.degrade, args.workers) == (40, False, 1)
    assert parse_args(["--output-dir", "x", "--degrade"]).degrade is True
    # The default is the screen row adopted on 2026-11-27: log-mel (40 bands) at 2x channels, trained channels-last,
    # one SpecAugment mask of each kind.
    args, config = parsed("default")
    assert args.validation_actors == 0  # since 2026-11-27: the fold models train on all 20 non-test actors
    # ... and keep their weights averaged over the last 15 epochs (`swa15`, adopted later that day).
    assert args.average_last_epochs is None and Recipe(epochs=args.epochs).average_last_epochs == 15
    # The default before that, `all_actors`, differs in the averaging alone; `masks1` also held 2 actors out.
    for system, held_out in (("all_actors", 0), ("masks1", 2)):
        earlier_args, earlier_config = parsed(system)
        assert earlier_config.to_dict() == config.to_dict() and earlier_args.channels_last == args.channels_last
        assert (earlier_args.validation_actors, earlier_args.average_last_epochs) == (held_out, 0)
    # Every earlier network system held 2 validation actors out and kept the last epoch, and still does, but for the
    # candidates that averaged.
    earlier = [parsed(system)[0] for system in SYSTEMS if system not in ("default", "all_actors")]
    assert all(args.validation_actors == 2 for args in earlier)
    assert [args.average_last_epochs for args in earlier].count(0) == len(earlier) - 4
    assert parsed("swa15")[0].average_last_epochs == 15
    # ... and the candidate that averaged at a learning-rate floor, otherwise `swa15`.
    floor, swa15 = vars(parsed("swa15_floor")[0]), vars(parsed("swa15")[0])
    assert (floor.pop("learning_rate_floor"), swa15.pop("learning_rate_floor"), args.learning_rate_floor) == (
        0.2, 0.0, 0.0)
    assert floor == swa15 and parsed("swa15_floor")[1].to_dict() == parsed("swa15")[1].to_dict()
    # ... and the candidate that keeps the frequency rows apart, otherwise `swa15` too.
    rows_args, rows_config = parsed("freq_rows")

    def without_config(args):
        return {k: v for k, v in vars(args).items() if k != "model_config"}

    assert without_config(rows_args) == without_config(parsed("swa15")[0]) and config.frequency_pooling == "mean"
    assert {**rows_config.to_dict(), "frequency_pooling": "mean"} == parsed("swa15")[1].to_dict()
    assert rows_config.frequency_pooling == "flatten"
    # ... and the one with frequency masks only.
    masks_args, masks_config = parsed("freq_masks")
    assert without_config(masks_args) == without_config(parsed("swa15")[0]) and config.time_mask_param == 20
    assert {**masks_config.to_dict(), "time_mask_param": 20} == parsed("swa15")[1].to_dict()
    assert (masks_config.time_mask_param, masks_config.freq_mask_param, masks_config.num_masks) == (0, 8, 1)
    # So do the screen's rows, but the one that screened the averaging.
    screened = [Recipe(**row).average_last_epochs for row in TRAINER_VARIANTS.values()]
    assert screened.count(0) == len(screened) - 1 and 15 in screened
    adopted = TRAINER_VARIANTS["full training path: log-mel 40 bands, 2x channels, channels-last (the default since "
                               "2026-11-26) + 1 SpecAugment mask of each kind (not 2)"]
    assert args.channels_last and adopted["channels_last"]
    assert config.to_dict() == SERConfig(**adopted["model"]).to_dict()
    assert (config.features, config.num_coefficients, config.deltas, config.channels, config.num_masks) == (
        "logmel", 40, False, [32, 64, 128, 256], 1)
    # The default before it, pinned as `logmel40_2x`, is the screen row adopted on 2026-11-26: two masks of each kind.
    args, config = parsed("logmel40_2x")
    before = TRAINER_VARIANTS["full training path: channels 32, 64, 128, 256 (2x), log-mel (40 bands, no deltas), "
                              "channels-last"]
    assert args.channels_last and before["channels_last"]
    assert config.to_dict() == SERConfig(**before["model"]).to_dict() and config.num_masks == 2
    # The systems measured before keep the MFCC input, width and contiguous training they ran with.
    widths = {"mfcc": [24, 48, 96, 192], "default_babble50": [24, 48, 96, 192], "narrow": [16, 32, 64, 128],
              "clean40": [16, 32, 64, 128], "babble50": [16, 32, 64, 128], "wide2x": [32, 64, 128, 256]}
    for system, channels in widths.items():
        args, config = parsed(system)
        assert not args.channels_last
        assert (config.features, config.n_mfcc, config.n_mels, config.deltas, config.channels, config.num_masks) == (
            "mfcc", 40, 64, True, channels, 2)
    args, config = parsed("logmel")
    assert not args.channels_last and (config.features, config.n_mels, config.deltas, config.num_masks) == (
        "logmel", 64, False, 2)
    assert not parse_args(["--output-dir", "x", "--no-channels-last"]).channels_last


@pytest.mark.skipif(not (ROOT / "bench/results/accuracy/default_emobox/fold1/metrics.json").exists(),
                    reason="the committed 6-fold results are not in this checkout")
def test_the_committed_default_results_were_trained_with_todays_default_recipe():
    """The README's headline comes from bench/results/accuracy/default_emobox: its folds must have been trained
    with what `python -m train` does now, or the figure describes another model."""
    from dataclasses import asdict

    from ser import SERConfig
    from train.train import Recipe

    default = asdict(Recipe())
    for metrics in sorted((ROOT / "bench/results/accuracy/default_emobox").glob("fold*/metrics.json")):
        # A setting added to Recipe after the run is missing from its record; its default is what the run did.
        recorded = {**default, **json.loads(metrics.read_text())["recipe"]}
        assert {k: v for k, v in recorded.items() if k != "model"} == {
            k: v for k, v in default.items() if k != "model"}, metrics
        assert SERConfig(**recorded["model"]).to_dict() == SERConfig().to_dict(), metrics
        # ... on the actors it splits off now: everyone outside the test fold trains, no one is held out.
        actors = json.loads(metrics.read_text())["actors"]
        assert set(actors) == {"train", "test"} and len(actors["train"]) == 24 - len(actors["test"]), metrics


def test_training_leaves_the_augmentation_workers_their_cores_and_restores_the_thread_count(tmp_path, monkeypatch):
    import torch

    from train.train import available_cores

    requested = []
    set_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (requested.append(n), set_threads(n)))
    before = torch.get_num_threads()
    main(["--data", str(FIXTURE), "--protocol", "full", "--epochs", "1", "--batch-size", "8", "--workers", "1",
          "--no-pitch", "--no-stretch", "--output-dir", str(tmp_path)])
    assert requested[0] == max(1, available_cores() - 1)
    assert torch.get_num_threads() == before


def test_training_without_validation_actors_trains_on_every_actor_and_evaluates_nothing_on_the_way(tmp_path):
    run = main(["--data", str(FIXTURE), "--protocol", "full", "--validation-actors", "0", "--epochs", "2",
                "--batch-size", "8", "--workers", "0", "--no-pitch", "--no-stretch", "--output-dir", str(tmp_path)])
    metrics = run["seed0"]
    fixture_actors = sorted({int(clip.parent.name.split("_")[1]) for clip in FIXTURE.glob("Actor_*/*.flac")})
    assert metrics["actors"] == {"train": fixture_actors}
    assert metrics["evaluated_on"] is None and "unweighted_accuracy" not in metrics
    assert metrics["validation_unweighted_accuracy_per_epoch"] == [] and len(metrics["train_loss_per_epoch"]) == 2
    assert metrics["final_validation_unweighted_accuracy"] is None
    assert (tmp_path / "model" / "model.safetensors").is_file() and (tmp_path / "learning_curves.png").is_file()
    assert not (tmp_path / "confusion_matrix.png").exists()  # nothing was scored
    with pytest.raises(ValueError, match="patience"):
        main(["--data", str(FIXTURE), "--protocol", "full", "--validation-actors", "0", "--patience", "2",
              "--epochs", "1", "--workers", "0", "--output-dir", str(tmp_path / "early")])


def test_resume_keeps_finished_runs_of_the_same_recipe_and_trains_the_rest(tmp_path):
    import shutil

    args = ["--data", str(FIXTURE), "--protocol", "full", "--seeds", "0", "1", "--epochs", "1", "--batch-size", "8",
            "--workers", "0", "--no-pitch", "--no-stretch", "--output-dir", str(tmp_path)]
    first = main(args)
    weights = {name: tmp_path / name / "model" / "model.safetensors" for name in ("seed0", "seed1")}
    written = {name: path.stat().st_mtime_ns for name, path in weights.items()}
    shutil.rmtree(tmp_path / "seed1")  # an interrupted run: seed1 never finished

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
    average.apply(model, [{"input_values": inputs[:32]}, {"input_values": inputs[32:]}])
    assert torch.allclose(model[0].weight, torch.full((3, 2), 3.0))  # epochs 2 and 3, not epoch 1
    hidden = model[0](inputs)
    assert torch.allclose(model[1].running_mean, hidden.mean(0), atol=1e-5)  # statistics of the averaged weights
    assert not model.training
    with pytest.raises(ValueError, match="last 4 of 3"):
        WeightAverage(model, epochs=4, total_epochs=3)


def test_training_can_keep_the_average_of_the_last_epochs_weights(tmp_path):
    from safetensors.torch import load_file

    args = ["--data", str(FIXTURE), "--protocol", "full", "--validation-actors", "2", "--epochs", "3", "--batch-size",
            "8", "--workers", "0", "--no-pitch", "--no-stretch"]
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


def test_a_learning_rate_floor_follows_the_cosine_schedule_until_it_reaches_the_floor_then_holds_it(tmp_path):
    import torch
    from transformers import Trainer, TrainingArguments

    from train.train import SERTrainer

    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=3e-3, warmup_steps=0.05,
                             lr_scheduler_type="cosine", report_to=[])
    steps = 1000
    rates = []
    for trainer in (Trainer(model=torch.nn.Linear(2, 2), args=args),
                    SERTrainer(model=torch.nn.Linear(2, 2), args=args, learning_rate_floor=0.2)):
        trainer.create_optimizer_and_scheduler(steps)
        rates.append([])
        for _ in range(steps):
            rates[-1].append(trainer.lr_scheduler.get_last_lr()[0])
            trainer.optimizer.step()
            trainer.lr_scheduler.step()
    cosine, floored = rates
    reached = next(step for step in range(100, steps) if cosine[step] < 0.2 * 3e-3)
    assert 600 < reached < 800  # cos(pi p) = -0.6 after the 50 warmup steps: p = 0.70
    assert floored[:reached] == cosine[:reached]  # the warmup too: it starts at 0, below the floor
    assert floored[reached:] == [pytest.approx(0.2 * 3e-3)] * (steps - reached)
    assert cosine[-1] < 1e-6
    with pytest.raises(ValueError, match="learning_rate_floor"):
        SERTrainer(model=torch.nn.Linear(2, 2), args=args, learning_rate_floor=1.0)


def test_training_with_a_learning_rate_floor_records_it_and_matches_the_plain_run_before_the_floor(tmp_path):
    args = ["--data", str(FIXTURE), "--protocol", "full", "--epochs", "3", "--batch-size", "8", "--workers", "0",
            "--no-pitch", "--no-stretch"]
    main([*args, "--output-dir", str(tmp_path / "plain")])
    main([*args, "--learning-rate-floor", "0.5", "--output-dir", str(tmp_path / "floor")])
    plain, floor = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("plain", "floor"))
    assert (plain["recipe"]["learning_rate_floor"], floor["recipe"]["learning_rate_floor"]) == (0.0, 0.5)
    # The cosine stays above half the peak for the first half of training, so the first epoch is the same run.
    assert floor["train_loss_per_epoch"][0] == plain["train_loss_per_epoch"][0]
    assert floor["train_loss_per_epoch"][-1] != plain["train_loss_per_epoch"][-1]


def test_resume_counts_a_setting_missing_from_an_older_record_as_its_default(tmp_path):
    from train.cli import finished_run
    from train.train import Recipe
    from train import data

    args = ["--data", str(FIXTURE), "--protocol", "full", "--epochs", "1", "--batch-size", "8", "--workers", "0",
            "--no-pitch", "--no-stretch", "--output-dir", str(tmp_path)]
    main(args)
    metrics_file = tmp_path / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    # As written before the settings existed: the code then kept the last epoch and trained contiguous, which is no
    # longer the default.
    del metrics["recipe"]["average_last_epochs"], metrics["recipe"]["channels_last"]
    metrics_file.write_text(json.dumps(metrics))
    splits = data.split_dataset(data.load_ravdess(str(FIXTURE)), "full")
    id2label = dict(enumerate(ser.RAVDESS_EMOTIONS))
    recipe = {**metrics["recipe"], "average_last_epochs": 0, "channels_last": False}
    assert finished_run(tmp_path, Recipe(**recipe), splits, id2label) is not None
    assert finished_run(tmp_path, Recipe(**{**recipe, "average_last_epochs": 1}), splits, id2label) is None
    assert finished_run(tmp_path, Recipe(**{**recipe, "channels_last": True}), splits, id2label) is None
    del metrics["recipe"]["learning_rate_floor"]  # a record from before the floor existed: it fell to 0
    metrics_file.write_text(json.dumps(metrics))
    assert finished_run(tmp_path, Recipe(**recipe), splits, id2label) is not None
    assert finished_run(tmp_path, Recipe(**{**recipe, "learning_rate_floor": 0.2}), splits, id2label) is None


def test_the_weight_averaging_covers_the_last_quarter_of_training_unless_patience_picks_an_epoch():
    from train.train import Recipe

    assert Recipe().average_last_epochs == 15 and Recipe().epochs == 60
    assert [Recipe(epochs=n).average_last_epochs for n in (3, 4, 10)] == [0, 1, 2]
    assert Recipe(patience=5).average_last_epochs == 0
    assert Recipe(epochs=10, average_last_epochs=6).average_last_epochs == 6


def test_a_channels_last_training_step_matches_a_contiguous_one():
    """`--channels-last` trains with channels-last weights for speed; a step must compute the same loss and gradients.
    (Without dropout and SpecAugment: their random masks are drawn in memory order, so with them a channels-last
    run draws other masks, as another seed would.)"""
    import copy

    import torch
    from conftest import FIXTURE_CLIPS

    from train.train import collate

    waves = [ser.load_audio(path, 16000) for path in FIXTURE_CLIPS[:4]]
    batch = collate([{"input_values": wave, "emotion": i} for i, wave in enumerate(waves)])
    batch, labels = batch["input_values"], batch["labels"]
    # Zero padding gives equal maxima in max pooling, and each layout breaks such ties its own way (both are valid
    # gradients); a faint noise floor makes the maxima unique, so the comparison is of the arithmetic alone.
    batch += 1e-3 * torch.randn(batch.shape, generator=torch.Generator().manual_seed(0))
    # A fixed initialization: for about 1 in 8 random ones the two layouts' gradients differ by up to 1 % (checked
    # against float64: near-equal maxima that each layout resolves its own way), which is not what this test is about.
    torch.manual_seed(0)
    contiguous = ser.SERForAudioClassification(ser.SERConfig(dropout=0.0, spec_augment=False)).train()
    channels_last = copy.deepcopy(contiguous).to(memory_format=torch.channels_last)
    results = []
    for model in (contiguous, channels_last):
        loss = model(batch, labels=labels).loss
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for a, b in zip(grads_a, grads_b):
        assert (a - b).norm() <= 1e-4 * a.norm()
    assert channels_last.encoder[0][0].weight.is_contiguous(memory_format=torch.channels_last)


def test_gradient_reversal_is_the_identity_forward_and_flips_the_gradient_back():
    import torch

    from train.train import GradientReversal

    x = torch.randn(4, 3, requires_grad=True)
    y = GradientReversal.apply(x, 0.5)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, -0.5))


def test_training_against_a_speaker_adversary(tmp_path, monkeypatch):
    import torch

    from train import train as training

    seen = []
    original = training.SpeakerAdversarialTrainer.compute_loss

    def spy(self, model, inputs, *args, **kwargs):
        if "speakers" in inputs:
            seen.append((inputs["speakers"].clone(), self.speaker_weight()))
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(training.SpeakerAdversarialTrainer, "compute_loss", spy)
    trainers, adversary_before = [], {}
    init = training.SpeakerAdversarialTrainer.__init__

    def remember(self, *args, **kwargs):
        init(self, *args, **kwargs)
        trainers.append(self)
        adversary_before.update({k: v.clone() for k, v in self.adversary.state_dict().items()})

    monkeypatch.setattr(training.SpeakerAdversarialTrainer, "__init__", remember)
    main(["--data", str(FIXTURE), "--protocol", "full", "--validation-actors", "2", "--epochs", "3", "--batch-size",
          "8", "--workers", "0", "--no-pitch", "--no-stretch", "--speaker-adversary", "0.5", "--output-dir",
          str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["recipe"]["speaker_adversary"] == 0.5
    # Training batches carry the actor as an index of the 2 training actors (the fixture's other 2 validate).
    speakers = torch.cat([s for s, _ in seen])
    assert set(speakers.tolist()) == {0, 1}
    weights = [w for _, w in seen]
    assert weights[0] == 0.0 and 0 < weights[-1] < 0.5 and weights == sorted(weights)
    # The adversary trained, and it is not part of the saved model.
    (trainer,) = trainers
    assert any(not torch.equal(adversary_before[k], v.cpu()) for k, v in trainer.adversary.state_dict().items())
    saved = AutoModelForAudioClassification.from_pretrained(tmp_path / "model")
    assert set(saved.state_dict()) == set(ser.SERForAudioClassification(saved.config).state_dict())
    assert all(np.isfinite(metrics["train_loss_per_epoch"]))


def test_speaker_adversary_and_mixup_do_not_combine(tmp_path):
    with pytest.raises(ValueError, match="mixup"):
        main(["--data", str(FIXTURE), "--protocol", "full", "--epochs", "1", "--speaker-adversary", "0.5",
              "--mixup", "0.2", "--output-dir", str(tmp_path)])


def test_channels_last_training_is_recorded_and_saves_a_plain_checkpoint(tmp_path):
    from safetensors.torch import load_file

    main(["--data", str(FIXTURE), "--protocol", "full", "--epochs", "2", "--batch-size", "8", "--workers", "0",
          "--no-pitch", "--no-stretch", "--output-dir", str(tmp_path)])
    assert json.loads((tmp_path / "metrics.json").read_text())["recipe"]["channels_last"] is True  # the default
    weights = load_file(tmp_path / "model" / "model.safetensors")
    assert all(tensor.is_contiguous() for tensor in weights.values())
    assert ser.EmotionRecognizer(str(tmp_path / "model")).predict(str(sorted(FIXTURE.glob("Actor_01/*.flac"))[0]))


def test_speaker_confusion_trains_the_adversary_to_name_actors_and_the_network_towards_a_uniform_guess():
    import torch

    from train.train import speaker_losses

    torch.manual_seed(0)
    adversary = torch.nn.Linear(6, 3)
    embedding = torch.randn(8, 6, requires_grad=True)
    speakers = torch.arange(8) % 3
    speaker_losses(adversary, embedding, speakers, weight=0.0, kind="confusion").backward()
    learn_only = adversary.weight.grad.clone()
    assert embedding.grad is None or not embedding.grad.any()  # without weight, nothing reaches the network
    adversary.zero_grad()
    embedding.grad = None
    loss = speaker_losses(adversary, embedding, speakers, weight=0.5, kind="confusion")
    loss.backward()
    assert torch.equal(adversary.weight.grad, learn_only)  # the confusion term does not train the adversary
    # The network's gradient is that of 0.5 x cross-entropy to the uniform distribution, which is bounded below.
    expected = torch.autograd.grad(-0.5 * adversary(embedding).log_softmax(-1).mean(), embedding)[0]
    torch.testing.assert_close(embedding.grad, expected)
    with pytest.raises(ValueError, match="reversal' or 'confusion'"):
        speaker_losses(adversary, embedding, speakers, weight=0.5, kind="other")


def test_training_with_speaker_confusion(tmp_path):
    main(["--data", str(FIXTURE), "--protocol", "full", "--epochs", "2", "--batch-size", "8", "--workers", "0",
          "--no-pitch", "--no-stretch", "--speaker-adversary", "0.5", "--speaker-adversary-loss", "confusion",
          "--output-dir", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["recipe"]["speaker_adversary_loss"] == "confusion"
    assert all(np.isfinite(metrics["train_loss_per_epoch"]))


def test_the_trainers_evaluation_batches_differ_from_the_library_only_by_centring_each_clip():
    """`Trainer.predict` (the test-fold figures) feeds the model `collate`'s zero-padded rows, whose DC offset the
    model removes over the padded length; `EmotionRecognizer` (every user path) centres each clip before padding.
    With that one step added, the training path gives the library's probabilities; without it they can differ a
    little, enough to flip a near-tie: the default's EmoBox fold 3 scores 62.9 % UA in its metrics.json (Trainer)
    and 63.3 % in bench/results/robustness (EmotionRecognizer), one clip apart."""
    import torch

    from train import data
    from train.train import collate

    clips = data.as_arrays(data.load_ravdess(str(FIXTURE)))
    waves = [np.asarray(w, dtype=np.float32) for w in clips["input_values"]][:16]
    recognizer = ser.EmotionRecognizer()
    expected = recognizer.probabilities(waves)

    @torch.inference_mode()
    def through_collate(rows):
        batch = collate([{"input_values": w, "emotion": 0} for w in rows])["input_values"]
        return recognizer.model(batch).logits.softmax(-1).numpy()

    centred = [(w - w.mean(dtype=np.float64)).astype(np.float32) for w in waves]
    np.testing.assert_allclose(through_collate(centred), expected, atol=1e-5)
    # The padded-row DC removal is not exact: the known difference.
    assert not np.array_equal(through_collate(waves), expected)


def test_split_seed_keeps_the_validation_actors_while_the_seed_changes_the_training(tmp_path):
    from train import data

    clips = data.load_ravdess(str(FIXTURE))
    validation = {seed: sorted(set(data.split_dataset(clips, "full", seed=seed, validation_actors=2)["validation"]
                                   ["actor"])) for seed in range(4)}
    seed, other = next((s, o) for s in validation for o in validation if validation[s] != validation[o])
    run = main(["--data", str(FIXTURE), "--protocol", "full", "--validation-actors", "2", "--seeds", str(other),
                "--split-seed", str(seed), "--epochs", "1", "--batch-size", "8", "--workers", "0", "--no-pitch",
                "--no-stretch", "--output-dir", str(tmp_path)])
    metrics = run[f"seed{other}"]
    assert metrics["actors"]["validation"] == validation[seed] != validation[other]
    assert (metrics["recipe"]["seed"], metrics["recipe"]["split_seed"]) == (other, seed)
