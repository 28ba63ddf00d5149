"""Publishing through the real huggingface_hub client against the local stand-in Hub (tests/hub_server.py):
the model repository, its card, the Space, the CLI's errors, and loading the upload in a clean process."""

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import huggingface_hub
import numpy as np
import pytest
import torch
import yaml
from conftest import FIXTURE, ROOT
from huggingface_hub import ModelCard, hf_hub_download, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError
from hub_server import HubServer

import ser
from ser import hub as ser_hub
from ser.card import render_model_card

pytestmark = pytest.mark.slow  # the Hub stand-in and clean processes

CLIP = FIXTURE / "Actor_02" / "03-01-05-01-01-01-02.flac"
LABELS = list(ser.RAVDESS_EMOTIONS)
MODEL_ID = "user/ser-demo"


def fake_metrics(evaluated_on="validation", actors=None):
    """A metrics.json as train/train.py writes it, with distinctive values to find in the card."""
    per_class = {label: {"precision": 0.125 * (i % 4 + 1), "recall": 0.0625 * (i + 1), "f1": 0.03125 * (i + 2),
                         "support": 2} for i, label in enumerate(LABELS)}
    return {
        "evaluated_on": evaluated_on,
        "actors": actors or {"train": [1, 4], "validation": [2, 3]},
        "clips": {"train": 16, "validation": 16, "test": 16},
        "labels": LABELS,
        "accuracy": 0.4375, "unweighted_accuracy": 0.40625, "macro_f1": 0.3671875,
        "per_class": per_class,
        "parameters": 98712,
        "train_seconds": 12.5,
        "epochs_run": 3,
        "recipe": {"epochs": 3, "batch_size": 32, "learning_rate": 0.001, "weight_decay": 0.001, "patience": 8,
                   "label_smoothing": 0.0, "class_weights": True, "noise": True, "pitch": False, "stretch": True,
                   "shift": True, "augment_probability": 0.3, "seed": 0, "model": {}},
    }


def fake_summary():
    runs = {f"fold{i}": {"unweighted_accuracy": 0.5 + i / 100, "accuracy": 0.52 + i / 100, "macro_f1": 0.49 + i / 100}
            for i in range(1, 7)}
    return {"protocol": "emobox", "runs": runs,
            "unweighted_accuracy": {"mean": 0.535, "std": 0.0187}, "accuracy": {"mean": 0.555, "std": 0.0187},
            "macro_f1": {"mean": 0.525, "std": 0.0187}, "labels": LABELS, "parameters": 98712}


def front_matter(text: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md has no YAML front matter"
    return yaml.safe_load(match.group(1))


def figures(value) -> set[str]:
    """Every number in a metrics structure, as the card prints it."""
    if isinstance(value, dict):
        return set().union(*map(figures, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(figures, value)) if value else set()
    return {f"{100 * value:.1f}%"} if isinstance(value, float) else set()


def eval_values(card: ModelCard) -> dict[tuple[str, str], float]:
    return {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results or []}


@pytest.fixture(scope="module")
def hub():
    """The stand-in Hub, with this process's huggingface_hub pointed at it and its token in HF_TOKEN."""
    with HubServer() as server, pytest.MonkeyPatch.context() as patch:
        # What HF_ENDPOINT sets when huggingface_hub is imported (it already is).
        patch.setattr(huggingface_hub.constants, "ENDPOINT", server.url)
        patch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                      server.url + "/{repo_id}/resolve/{revision}/{filename}")
        patch.setenv("HF_TOKEN", server.token)
        yield server


def hub_env(hub, home):
    """Environment for a subprocess that talks to the stand-in: nothing else inherited but PATH and HOME."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token,
            "HF_HOME": str(home / "hf"), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def checkpoint(random_checkpoint, tmp_path_factory):
    """The random checkpoint with non-default normalization and batch-norm statistics, so a reload that
    dropped any buffer would change the logits."""
    model = ser.SERForAudioClassification.from_pretrained(random_checkpoint)
    generator = torch.Generator().manual_seed(0)
    front = model.front_end
    front.set_normalization(torch.randn(front.feature_mean.shape, generator=generator) * 5,
                            torch.rand(front.feature_std.shape, generator=generator) * 10 + 1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator))
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    path = tmp_path_factory.mktemp("checkpoint") / "model"
    model.save_pretrained(path)
    ser.new_feature_extractor(model.config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def run_dir(checkpoint):
    from train import plots

    run = checkpoint.parent
    (run / "metrics.json").write_text(json.dumps(fake_metrics(), indent=2))
    plots.confusion_matrix(np.eye(8, dtype=int) * 2, LABELS, run / "confusion_matrix.png", title="validation")
    return run


@pytest.fixture(scope="module")
def pushed(hub, checkpoint, run_dir):
    return ser_hub.push_model(checkpoint, MODEL_ID, run_dir=run_dir)


# -- the card ---------------------------------------------------------------------------------------------------
def test_card_states_the_protocol_and_only_the_run_figures(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    metrics, summary = fake_metrics(), fake_summary()
    text = render_model_card(MODEL_ID, config, metrics, summary, {"checkpoint": "confusion_matrix.png"})
    card = ModelCard(text)
    assert card.data.license == "cc-by-nc-sa-4.0" and card.data.pipeline_tag == "audio-classification"
    assert card.data.library_name == "transformers" and "ravdess" in card.data.datasets
    values = eval_values(card)
    assert values == {("validation", "recall"): 0.40625, ("validation", "accuracy"): 0.4375,
                      ("validation", "f1"): 0.3671875, ("emobox-cross-validation", "recall"): 0.535,
                      ("emobox-cross-validation", "accuracy"): 0.555, ("emobox-cross-validation", "f1"): 0.525}
    assert all(r.task_type == "audio-classification" and r.dataset_name == "RAVDESS" for r in card.data.eval_results)
    # Every percentage printed is one of the files' numbers.
    printed = set(re.findall(r"\d+\.\d%", text))
    assert printed and printed <= figures(metrics) | figures(summary)
    assert {"40.6%", "43.8%", "53.5%", "1.9%"} <= printed
    assert "no held-out test split" in text and "actors 2, 3" in text and "early stopping" in text
    assert "Speaker-independent cross-validation on the EmoBox folds" in text and "6 runs (fold1," in text
    assert "![Confusion matrix on the validation split](confusion_matrix.png)" in text
    assert f'pipeline("audio-classification", model="{MODEL_ID}", trust_remote_code=True)' in text
    assert "PLoS ONE 13(5): e0196391" in text and "CC BY-NC-SA 4.0" in text
    assert "North-American English" in text and "decisions about" in text


def test_card_recognizes_speaker_independent_and_dependent_tests(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    disjoint = fake_metrics("test", {"train": [1, 2], "validation": [3], "test": [4]})
    shared = fake_metrics("test", {"train": [1, 2, 3, 4], "validation": [1, 2, 3, 4], "test": [1, 2, 3, 4]})
    independent, dependent = (render_model_card(MODEL_ID, config, m) for m in (disjoint, shared))
    assert "none of whom is in the training or validation data" in independent
    assert {c for c, _ in eval_values(ModelCard(independent))} == {"speaker-independent"}
    assert "speaker-DEPENDENT" in dependent
    assert {c for c, _ in eval_values(ModelCard(dependent))} == {"speaker-dependent"}


def test_card_says_whether_the_validation_actors_chose_the_epoch(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    early_stopped, last_epoch = fake_metrics(), fake_metrics()
    last_epoch["recipe"] = {**last_epoch["recipe"], "patience": 0, "warmup_ratio": 0.05}
    early, last = (render_model_card(MODEL_ID, config, m) for m in (early_stopped, last_epoch))
    assert "chose the best epoch (early stopping)" in early and "early stopping on validation UA" in early
    assert "chose the best epoch" not in last and "the last epoch is kept" in last
    last_epoch["recipe"]["average_last_epochs"] = 15
    averaged = render_model_card(MODEL_ID, config, last_epoch)
    assert "the last epoch is kept" not in averaged and "the weights of the last 15 epochs are averaged" in averaged


def test_card_of_a_checkpoint_trained_on_every_actor_gives_only_the_cross_validation(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    everyone = {key: value for key, value in fake_metrics(None, {"train": [1, 2, 3, 4]}).items()
                if key not in ("accuracy", "unweighted_accuracy", "macro_f1", "per_class")}
    everyone["clips"] = {"train": 32}
    text = render_model_card(MODEL_ID, config, everyone, fake_summary(), {})
    assert "trained on all 32 clips of its 4 actors, with no one held out, so it has no figures of its own" in text
    assert "it estimates how this model does on voices it has never heard" in text
    assert {c for c, _ in eval_values(ModelCard(text))} == {"emobox-cross-validation"}
    assert set(re.findall(r"\d+\.\d%", text)) <= figures(fake_summary())
    assert "Confusion matrix on the" not in text
    alone = render_model_card(MODEL_ID, config, everyone)
    assert "no figures of its own" in alone and "cross-validation" not in alone
    assert not re.search(r"\d+\.\d%", alone)


def test_card_states_the_specaugment_masks_the_model_trained_with(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    two = render_model_card(MODEL_ID, {**config, "spec_augment": True, "num_masks": 2, "freq_mask_param": 8,
                                       "time_mask_param": 20}, fake_metrics())
    one = render_model_card(MODEL_ID, {**config, "spec_augment": True, "num_masks": 1}, fake_metrics())
    off = render_model_card(MODEL_ID, {**config, "spec_augment": False}, fake_metrics())
    assert "SpecAugment on the features: 2 frequency masks of up to 8 bands and 2 time masks of up to 20 frames" in two
    assert "1 frequency mask of up" in one and "1 time mask of up" in one
    assert "SpecAugment" not in off


def test_card_without_results_reports_none(checkpoint):
    text = render_model_card(MODEL_ID, json.loads((checkpoint / "config.json").read_text()))
    assert "model-index" not in front_matter(text)
    assert "reports none" in text and not re.search(r"\d+\.\d%", text)


TRAINING_DATA = {"ravdess": {"clips": 1320, "speakers": 22}, "tess": {"clips": 2800, "speakers": 2},
                 "emodb": {"clips": 357, "speakers": 8}}


def three_corpus_config(checkpoint) -> dict:
    """The checkpoint's config as a multi-corpus, calibrated run saves it."""
    config = json.loads((checkpoint / "config.json").read_text())
    return {**config, "features": "mfcc", "deltas": True, "n_mels": 64, "training_data": TRAINING_DATA,
            "calibration_temperature": 1.43, "confidence_threshold": 0.31}


def test_card_follows_the_corpora_the_checkpoint_was_trained_on(checkpoint):
    config = json.loads((checkpoint / "config.json").read_text())
    ravdess = render_model_card(MODEL_ID, {**config, "training_data": {"ravdess": {"clips": 1440, "speakers": 24}}},
                                fake_metrics())
    meta = front_matter(ravdess)
    assert meta["license"] == "cc-by-nc-sa-4.0" and "license_name" not in meta
    assert meta["datasets"] == ["ravdess"] and meta["language"] == "en"
    assert "trained on RAVDESS (1,440 clips, 24 speakers)" in ravdess and "CC BY-NC-ND" not in ravdess

    three = render_model_card(MODEL_ID, three_corpus_config(checkpoint), fake_metrics())
    meta = front_matter(three)
    assert meta["license"] == "other" and meta["license_name"] == "ravdess-tess-emodb-non-commercial-research"
    assert meta["datasets"] == ["ravdess", "tess", "emodb"] and meta["language"] == ["en", "de"]
    assert {"ravdess", "tess", "emodb", "mfcc"} <= set(meta["tags"])
    assert ("trained on RAVDESS (1,320 clips, 22 speakers), TESS (2,800 clips, 2 speakers) and EmoDB (357 clips, 8 "
            "speakers)") in three and "40 MFCCs (64 mel bands) + Δ + ΔΔ" in three
    for licence in ("RAVDESS (CC BY-NC-SA 4.0)", "TESS (CC BY-NC-ND 4.0)", "EmoDB (free for research use"):
        assert licence in three, licence
    assert "non-commercial research use only, under the terms of all three" in three
    for citation in ("PLoS ONE 13(5): e0196391", "doi.org/10.5683/SP2/E8H2MF", "Interspeech 2005, 1517–1520",
                     "@article{livingstone2018ravdess", "@misc{dupuis2010tess", "@inproceedings{burkhardt2005emodb"):
        assert citation in three, citation
    assert "German" in three and "Below its threshold it says \"not sure\"" in three


def write_model_card():
    """scripts/write_model_card.py as a module."""
    spec = importlib.util.spec_from_file_location("write_model_card", ROOT / "scripts" / "write_model_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def calibration_record() -> dict:
    return {"temperature": 1.43, "before": {"ece": 0.15234, "nll": 1.23456}, "after": {"ece": 0.04123, "nll": 1.04567},
            "confidence_threshold": 0.31, "at_threshold": {"threshold": 0.31, "coverage": 0.8125,
                                                           "accuracy_answered": 0.6875, "accuracy_held_back": 0.3125}}


def held_out_metrics(corpus: str, ua: float, top_class: str, share: float, calibration: bool = True) -> dict:
    """A leave-one-corpus-out metrics.json (or the baseline's score on the corpus, without calibration)."""
    restricted = {"unweighted_accuracy": ua, "accuracy": ua + 0.01, "macro_f1": ua - 0.03, "top_class": top_class,
                  "top_class_share": share, "classes": ["neutral", "happy", "sad", "angry", "fearful", "disgust"]}
    metrics = {**fake_metrics("test"), "protocol": "loco", "restricted": restricted,
               "corpora": {"train": {k: v for k, v in TRAINING_DATA.items() if k != corpus},
                           "test": {corpus: {"clips": 454, "speakers": 10}}}}
    return {**metrics, "calibration": calibration_record()} if calibration else metrics


def release_results(root, checkpoint):
    """The results tree and checkpoint folder that write_model_card reads, in the shapes the commands write."""
    def write(path, value):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(json.dumps(value))

    validation = ["emodb/08", "emodb/13", "ravdess/05", "ravdess/18"]
    release = {**fake_metrics("validation"), "protocol": "full", "parameters": 393000,
               "speakers": {"train": sorted(f"ravdess/{i:02d}" for i in range(1, 23)), "validation": validation},
               "clips": {"train": 4477, "validation": 217}, "corpora": {"train": TRAINING_DATA},
               "calibration": calibration_record(), "train_seconds": 1234.5, "commit": "0123456789" * 4,
               "temperature": {"temperature": 1.43, "confidence_threshold": 0.31, "fitted_on": "validation"},
               "recipe": {"epochs": 60, "batch_size": 16, "learning_rate": 0.003, "weight_decay": 0.01,
                          "warmup_ratio": 0.05, "augment": ["noise", "pitch", "stretch", "shift", "degrade"],
                          "augment_probability": 0.3, "balance": "corpus", "epoch_clips": 1440,
                          "average_last_epochs": 15, "class_weights": True, "seed": 0, "workers": 2,
                          "model": {"features": "mfcc", "deltas": True, "n_mels": 64}}}
    del release["actors"]
    write("release/metrics.json", release)
    write("corpora/shipped/ravdess_6fold/summary.json", {**fake_summary(), "calibration": {
        "temperature": 1.43, "before": {"ece": 0.15234, "nll": 1.23456}, "after": {"ece": 0.04123, "nll": 1.04567}}})
    for run in fake_summary()["runs"]:
        write(f"corpora/shipped/ravdess_6fold/{run}/metrics.json", {"calibration": calibration_record()})
    write("corpora/shipped/tess/metrics.json", held_out_metrics("tess", 0.5821428571428572, "disgust", 0.3239))
    write("corpora/shipped/emodb/metrics.json", held_out_metrics("emodb", 0.5406993143864167, "sad", 0.3172))
    write("corpora/ravdess_only/tess/metrics.json", held_out_metrics("tess", 0.5357, "disgust", 0.4107, False))
    write("corpora/ravdess_only/emodb/metrics.json", held_out_metrics("emodb", 0.4961, "sad", 0.4515, False))
    write("accuracy/default_emobox/summary.json", {**fake_summary(), "unweighted_accuracy": {"mean": 0.6732,
                                                                                            "std": 0.0281}})
    write("speed/speed.json", {"machine": {"cpu": "AMD EPYC"}, "systems": {
        "ours": {"parameters": 393000, "size_on_disk_bytes": 1612345, "latency": {"1": {"total": {"median_ms": 8.21}}}},
        "anchor": {"latency": {"1": {"total": {"median_ms": 1987.6}}}}}})
    write("model/config.json", three_corpus_config(checkpoint))
    return root / "model"


def test_release_card_gives_the_held_out_figures_over_seeds(checkpoint, tmp_path):
    """With other seeds of the recipe held out, the difference from the baseline is their mean, shown with the
    standard deviation over the seeds: chance alone moves them by several points."""
    script = write_model_card()
    model = release_results(tmp_path, checkpoint)
    for seed, tess, emodb in ((1, 0.523, 0.522), (2, 0.462, 0.534)):
        for name, ua in (("tess", tess), ("emodb", emodb)):
            path = tmp_path / f"corpora/shipped_seed{seed}/{name}/metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(held_out_metrics(name, ua, "disgust", 0.3)))
    text = script.build_card(tmp_path, model)
    assert len(text.encode()) <= script.MAX_BYTES
    # TESS: mean(58.2, 52.3, 46.2) - 53.6 = -1.3; EmoDB: mean(54.1, 52.2, 53.4) - 49.6 = +3.6; their mean +1.1.
    # std (n - 1): TESS 6.0 (58.21, 52.3, 46.2), EmoDB 0.9 (54.07, 52.2, 53.4).
    assert ("+1.1 points on the held-out corpora (mean ± std over 3 seeds: TESS 52.2% ± 6.0, EmoDB 53.2% ± 0.9)."
            in text)
    assert "| TESS held out | 58.2% (disgust 32%) | 53.6% (disgust 41%) |" in text  # the table keeps seed 0


def test_release_card_reports_the_shipped_results_within_its_size(checkpoint, tmp_path):
    script = write_model_card()
    model = release_results(tmp_path, checkpoint)
    text = script.build_card(tmp_path, model)
    assert len(text.encode()) <= script.MAX_BYTES == 6144
    card = ModelCard(text)
    assert {(r.dataset_type, r.dataset_config, r.dataset_split): r.metric_value for r in card.data.eval_results} == {
        ("ravdess", "emobox-cross-validation", "test"): 0.535, ("tess", "held-out-corpus", "test"): 0.5821,
        ("emodb", "held-out-corpus", "test"): 0.5407}
    assert card.data.license == "other" and card.data.datasets == ["ravdess", "tess", "emodb"]
    assert "| RAVDESS: 6 folds of unseen actors | 53.5% ± 1.9% | 67.3% ± 2.8% |" in text
    assert "| TESS held out | 58.2% (disgust 32%) | 53.6% (disgust 41%) |" in text
    assert "| EmoDB held out | 54.1% (sad 32%) | 49.6% (sad 45%) |" in text
    assert ("Difference from the RAVDESS-only (previous default) column: -13.8 points of UA on RAVDESS's unseen "
            "actors, +4.6 points on the held-out corpora (mean).") in text
    assert "| RAVDESS folds (mean) | 0.152 → 0.041 | 1.23 → 1.05 | 81% / 69% |" in text
    assert "T = 1.43" in text and "below a top probability of 0.31" in text and "its 4 validation speakers" in text
    assert "4 validation speakers (emodb/08, emodb/13, ravdess/05, ravdess/18) held back" in text
    assert "Corpora drawn equally often, 1440 clips an epoch" in text and "8.2 ms median per clip" in text
    for licence in ("CC BY-NC-SA 4.0", "CC BY-NC-ND 4.0", "free for research use"):
        assert licence in text, licence
    assert "## Robustness" not in text and "![" not in text

    # A release record from before multi-corpus training still renders.
    release = json.loads((tmp_path / "release" / "metrics.json").read_text())
    old = {key: value for key, value in release.items() if key not in ("corpora", "calibration", "temperature")}
    old["actors"] = old.pop("speakers")
    (tmp_path / "release" / "metrics.json").write_text(json.dumps(old))
    assert "| TESS held out | 58.2% (disgust 32%)" in script.build_card(tmp_path, model)


def test_release_card_names_what_is_missing(checkpoint, tmp_path):
    script = write_model_card()
    model = release_results(tmp_path, checkpoint)
    (tmp_path / "corpora" / "shipped" / "tess" / "metrics.json").unlink()
    (tmp_path / "corpora" / "shipped" / "ravdess_6fold" / "fold3" / "metrics.json").unlink()
    with pytest.raises(SystemExit, match=r"shipped/tess/metrics.json\n    made by: python -m bench.corpora"):
        script.build_card(tmp_path, model)
    (tmp_path / "corpora" / "shipped" / "tess" / "metrics.json").write_text(
        json.dumps(held_out_metrics("tess", 0.58, "disgust", 0.32)))
    with pytest.raises(SystemExit, match=r"fold3/metrics.json"):
        script.build_card(tmp_path, model)
    (tmp_path / "corpora" / "shipped" / "ravdess_6fold" / "fold3" / "metrics.json").write_text(
        json.dumps({"calibration": calibration_record()}))
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "training_data": None}))
    with pytest.raises(SystemExit, match="embed it first"):
        script.build_card(tmp_path, model)


# -- the model repository ---------------------------------------------------------------------------------------
def test_push_model_uploads_checkpoint_code_card_and_figures(hub, pushed, checkpoint, run_dir):
    assert pushed == f"{hub.url}/{MODEL_ID}"
    repo = hub.repo(MODEL_ID)
    assert repo.type == "model" and repo.private is False
    local = {p.name for p in checkpoint.iterdir()}
    assert local == {"config.json", "configuration_ser.py", "modeling_ser.py", "model.safetensors",
                     "preprocessor_config.json"}
    assert set(repo.files) == local | {"README.md", "metrics.json", "confusion_matrix.png", ".gitattributes"}
    for name in local:
        assert repo.files[name] == (checkpoint / name).read_bytes(), name
    assert repo.files["confusion_matrix.png"] == (run_dir / "confusion_matrix.png").read_bytes()
    assert json.loads(repo.files["metrics.json"]) == fake_metrics()
    assert not [name for name in repo.files if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    config = json.loads(repo.files["config.json"])
    assert config["auto_map"] == {"AutoConfig": "configuration_ser.SERConfig",
                                  "AutoModelForAudioClassification": "modeling_ser.SERForAudioClassification"}

    readme = repo.files["README.md"].decode()
    meta = front_matter(readme)
    assert meta["license"] == "cc-by-nc-sa-4.0" and meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "audio-classification" and "speech-emotion-recognition" in meta["tags"]
    [entry] = meta["model-index"]
    assert entry["name"] == "ser-demo"
    [result] = entry["results"]
    assert result["task"]["type"] == "audio-classification"
    assert result["dataset"]["name"] == "RAVDESS" and result["dataset"]["split"] == "validation"
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"recall": 0.40625, "accuracy": 0.4375,
                                                                    "f1": 0.3671875}
    assert "](confusion_matrix.png)" in readme


def test_push_private_and_make_existing_repository_private(hub, checkpoint, tmp_path):
    ser_hub.push_model(checkpoint, "user/ser-private", private=True)
    assert hub.repo("user/ser-private").private is True
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/ser-private", "config.json", endpoint=hub.url, token=False, cache_dir=tmp_path)
    downloaded = hf_hub_download("user/ser-private", "config.json", endpoint=hub.url, token=hub.token,
                                 cache_dir=tmp_path)
    assert open(downloaded, "rb").read() == (checkpoint / "config.json").read_bytes()
    # A card with no run folder reports no figures.
    assert "model-index" not in front_matter(hub.repo("user/ser-private").files["README.md"].decode())

    ser_hub.push_model(checkpoint, "user/ser-later", private=False)
    assert hub.repo("user/ser-later").private is False
    ser_hub.push_model(checkpoint, "user/ser-later", private=True)
    assert hub.repo("user/ser-later").private is True


def test_push_with_a_cross_validation_summary(hub, checkpoint, run_dir, tmp_path):
    from train import plots

    cv = tmp_path / "emobox"
    cv.mkdir()
    (cv / "summary.json").write_text(json.dumps(fake_summary()))
    plots.confusion_matrix(np.eye(8, dtype=int) * 12, LABELS, cv / "confusion_matrix.png", title="emobox")
    assert ser_hub.main(["push", str(checkpoint), "user/ser-cv", "--run-dir", str(run_dir),
                         "--summary", str(cv / "summary.json")]) == 0
    repo = hub.repo("user/ser-cv")
    assert repo.files["cross_validation_summary.json"] == (cv / "summary.json").read_bytes()
    assert repo.files["cross_validation_confusion_matrix.png"] == (cv / "confusion_matrix.png").read_bytes()
    assert repo.files["confusion_matrix.png"] == (run_dir / "confusion_matrix.png").read_bytes()
    card = ModelCard(repo.files["README.md"].decode())
    assert eval_values(card)["emobox-cross-validation", "recall"] == 0.535
    assert eval_values(card)["validation", "recall"] == 0.40625
    assert "](cross_validation_confusion_matrix.png)" in card.text and "](confusion_matrix.png)" in card.text


def test_push_refuses_a_run_folder_without_usable_metrics(hub, checkpoint, tmp_path):
    with pytest.raises(ser_hub.HubError, match="holds neither metrics.json nor summary.json"):
        ser_hub.push_model(checkpoint, "user/refused", run_dir=tmp_path)
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(ser_hub.HubError, match="unexpected metrics file"):
        ser_hub.push_model(checkpoint, "user/refused", run_dir=tmp_path)
    assert ("model", "user/refused") not in hub.repos


def test_a_folder_readme_is_uploaded_instead_of_the_generated_card(hub, checkpoint, tmp_path):
    folder = shutil.copytree(checkpoint, tmp_path / "model")
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-sa-4.0\n---\n# Hand-written card\n")
    ser_hub.push_model(folder, "user/ser-own-card")
    assert hub.repo("user/ser-own-card").files["README.md"] == (folder / "README.md").read_bytes()


@pytest.mark.parametrize("change,message", [
    (lambda d: (d / "pytorch_model.bin").write_bytes(b"pickle"), "pickle files (pytorch_model.bin)"),
    (lambda d: (d / "model.safetensors").unlink(), "lacks model.safetensors"),
    (lambda d: (d / "modeling_ser.py").unlink(), "lacks modeling_ser.py"),
])
def test_push_refuses_unsafe_or_incomplete_checkpoints(hub, checkpoint, tmp_path, change, message):
    folder = shutil.copytree(checkpoint, tmp_path / "model")
    change(folder)
    before = set(hub.repos)
    with pytest.raises(ser_hub.HubError, match=re.escape(message)):
        ser_hub.push_model(folder, "user/refused")
    assert set(hub.repos) == before


def test_cli_errors_are_one_line_with_exit_code(hub, checkpoint, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = subprocess.run([sys.executable, "-m", "ser.hub", "push", str(empty), "user/x"], cwd=ROOT,
                         env=hub_env(hub, tmp_path), capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [f"error: {empty} lacks config.json, model.safetensors, "
                                               "preprocessor_config.json: it is not a complete checkpoint "
                                               "(save the model and ser.new_feature_extractor(config) with "
                                               "save_pretrained)"]
    assert ("model", "user/x") not in hub.repos


def test_cli_reports_missing_token_unreachable_hub_and_refused_token(hub, checkpoint, tmp_path, monkeypatch, capsys):
    def error_of(*argv):
        assert ser_hub.main(list(argv)) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ")
        return lines[0]

    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    assert "no Hugging Face token: set HF_TOKEN or run `hf auth login`" in error_of(
        "push", str(checkpoint), "user/no-token")

    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    message = error_of("space", "user/space", "--model", MODEL_ID)
    assert "refused to look up the model user/ser-demo" in message and "401" in message and "HF_TOKEN" in message

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HF_TOKEN", hub.token)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed)
    assert f"cannot reach the Hub at {closed} to create the model repository user/away" in error_of(
        "push", str(checkpoint), "user/away")


def test_cli_push_accepts_a_training_run_folder(hub, run_dir, capsys):
    assert ser_hub.main(["push", str(run_dir), "user/ser-from-run", "--private"]) == 0
    assert capsys.readouterr().out.strip() == f"{hub.url}/user/ser-from-run"
    repo = hub.repo("user/ser-from-run")
    assert repo.private and "metrics.json" in repo.files and "confusion_matrix.png" in repo.files


# -- loading what was uploaded ----------------------------------------------------------------------------------
CLEAN_LOAD = """
import json, sys
import numpy as np, torch
sys.modules["ser"] = None  # this project's package must not be what makes the load work
from transformers import AutoModelForAudioClassification, pipeline
repo, wave_file, clip = sys.argv[1:]
model = AutoModelForAudioClassification.from_pretrained(repo, trust_remote_code=True)
wave = np.load(wave_file)
with torch.inference_mode():
    logits = model(torch.from_numpy(wave)[None]).logits[0].tolist()
classifier = pipeline("audio-classification", model=repo, trust_remote_code=True)
from_array = classifier({"raw": wave, "sampling_rate": 16000}, top_k=8)
from_file = classifier(clip, top_k=8)
print(json.dumps({"logits": logits, "module": type(model).__module__, "array": from_array, "file": from_file}))
"""


def test_upload_loads_with_trust_remote_code_in_a_clean_process(hub, pushed, checkpoint, tmp_path):
    wave = ser.load_audio(CLIP)
    np.save(tmp_path / "wave.npy", wave)
    original = ser.SERForAudioClassification.from_pretrained(checkpoint).eval()
    with torch.inference_mode():
        expected = original(torch.from_numpy(wave)[None]).logits[0]
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    run = subprocess.run([sys.executable, "-I", "-c", CLEAN_LOAD, MODEL_ID, str(tmp_path / "wave.npy"), str(CLIP)],
                         cwd=workdir, env=hub_env(hub, tmp_path), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["module"].startswith("transformers_modules.")  # the code came from the repository
    torch.testing.assert_close(torch.tensor(result["logits"]), expected, rtol=0, atol=1e-4)  # float32, other threads
    scores = {r["label"]: r["score"] for r in result["array"]}
    probabilities = dict(zip(LABELS, expected.softmax(-1).tolist()))
    assert scores == pytest.approx(probabilities, abs=1e-5)
    assert sorted(r["label"] for r in result["file"]) == sorted(LABELS)
    assert sum(r["score"] for r in result["file"]) == pytest.approx(1.0, abs=1e-4)


# -- the Space ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def space(hub, pushed):
    return ser_hub.push_space("user/ser-space", MODEL_ID)


def test_push_space_uploads_app_package_and_front_matter(hub, space):
    import gradio

    assert space == f"{hub.url}/spaces/user/ser-space"
    repo = hub.repo("user/ser-space", "space")
    assert repo.sdk == "gradio" and repo.private is False
    assert repo.files["packages.txt"].decode().split() == ["ffmpeg"]
    for name in ("app.py", "requirements.txt", "ser/__init__.py", "ser/audio.py", "ser/inference.py",
                 "ser/modeling_ser.py", "ser/configuration_ser.py"):
        assert repo.files[name] == (ROOT / name).read_bytes(), name
    assert not [name for name in repo.files if "default_model" in name or "__pycache__" in name]
    clips = [name for name in repo.files if name.endswith(".flac")]
    assert len(clips) == 32 and "tests/fixtures/ravdess/README.md" in repo.files  # examples and their license
    meta = front_matter(repo.files["README.md"].decode())
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert meta["app_file"] == "app.py" and meta["license"] == "cc-by-nc-sa-4.0"
    assert meta["models"] == [MODEL_ID] and meta["preload_from_hub"] == [MODEL_ID]
    assert meta["title"] and meta["emoji"] and len(meta["short_description"]) <= 60
    assert "names the corpora it learned from" in repo.files["README.md"].decode()  # whatever model it serves
    assert repo.variables["SER_MODEL"]["value"] == MODEL_ID


def test_push_space_updates_and_refuses_a_missing_model(hub, space):
    repo = hub.repo("user/ser-space", "space")
    commits = len(repo.commits)
    assert ser_hub.push_space("user/ser-space", MODEL_ID) == space
    assert len(repo.commits) == commits + 1 and len(hub.repos) == len(set(hub.repos))
    with pytest.raises(ser_hub.HubError, match="user/missing is not on the Hub"):
        ser_hub.push_space("user/other-space", "user/missing")
    assert ("space", "user/other-space") not in hub.repos


def test_push_space_warns_that_a_private_model_needs_a_token(hub, checkpoint):
    ser_hub.push_model(checkpoint, "user/ser-secret", private=True)
    with pytest.warns(UserWarning, match="user/ser-secret is private: add a read token as the Space secret HF_TOKEN"):
        ser_hub.push_space("user/ser-secret-space", "user/ser-secret", private=True)
    assert hub.repo("user/ser-secret-space", "space").private is True


SPACE_RUN = """
import json, os, sys
import app, ser
assert os.path.dirname(ser.__file__) == os.path.join(os.getcwd(), "ser"), ser.__file__
args = app.parse_args([])  # what the Space runs: app.py with no arguments
assert args.model == os.environ["SER_MODEL"], args.model
assert all((app.FIXTURES / name).is_file() for name, _ in app.EXAMPLES)
recognizer = app.load_recognizer(args.model)
app.build_demo(recognizer)
print(json.dumps(recognizer.predict(sys.argv[1])))
"""


def test_space_app_serves_the_model_named_by_its_variable(hub, space, checkpoint, tmp_path):
    folder = snapshot_download("user/ser-space", repo_type="space", endpoint=hub.url, token=hub.token,
                               local_dir=tmp_path / "space", cache_dir=tmp_path / "cache")
    env = {**hub_env(hub, tmp_path), "SER_MODEL": hub.repo("user/ser-space", "space").variables["SER_MODEL"]["value"]}
    clip = os.path.join(folder, "tests/fixtures/ravdess/Actor_02/03-01-05-01-01-01-02.flac")
    run = subprocess.run([sys.executable, "-c", SPACE_RUN, clip], cwd=folder, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    scores = json.loads(run.stdout.strip().splitlines()[-1])
    assert scores == pytest.approx(ser.EmotionRecognizer(checkpoint).predict(CLIP), abs=1e-5)


# -- training straight to the Hub -------------------------------------------------------------------------------
def test_train_push_to_hub_without_token_stops_before_training(hub, tmp_path, monkeypatch):
    from train.cli import main

    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(SystemExit, match="error: no Hugging Face token: set HF_TOKEN"):
        main(["--data", str(FIXTURE), "--protocol", "full", "--output-dir", str(tmp_path / "run"),
              "--push-to-hub", "user/never"])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("validation_actors", ["2", "0"])
def test_train_push_to_hub(hub, tmp_path, validation_actors):
    out = tmp_path / "run"
    run = subprocess.run([sys.executable, "-m", "train", "--data", str(FIXTURE), "--protocol", "full", "--epochs", "1",
                          "--validation-actors", validation_actors, "--output-dir", str(out),
                          "--push-to-hub", f"user/ser-trained-{validation_actors}"],
                         cwd=ROOT, env=hub_env(hub, tmp_path), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"pushed to {hub.url}/user/ser-trained-{validation_actors}" in run.stdout
    repo = hub.repo(f"user/ser-trained-{validation_actors}")
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "modeling_ser.py"):
        assert repo.files[name] == (out / "model" / name).read_bytes(), name
    assert repo.files["metrics.json"] == (out / "metrics.json").read_bytes()
    metrics = json.loads((out / "metrics.json").read_text())
    card = ModelCard(repo.files["README.md"].decode())
    if validation_actors == "0":  # trained on every fixture actor: nothing scored, nothing claimed
        assert "confusion_matrix.png" not in repo.files
        assert eval_values(card) == {} and "no figures of its own" in card.text
        return
    assert repo.files["confusion_matrix.png"] == (out / "confusion_matrix.png").read_bytes()
    assert eval_values(card) == {("validation", "recall"): metrics["unweighted_accuracy"],
                                 ("validation", "accuracy"): metrics["accuracy"],
                                 ("validation", "f1"): metrics["macro_f1"]}
    assert f"{100 * metrics['unweighted_accuracy']:.1f}%" in card.text


def test_the_app_says_which_corpora_the_model_learned_from():
    from ser.card import learned_from

    three = {"training_data": {"tess": {"clips": 2800, "speakers": 2}, "ravdess": {"clips": 1260, "speakers": 21},
                               "emodb": {"clips": 415, "speakers": 9}}}
    assert learned_from(three).startswith("RAVDESS (North-American English actors saying two sentences, 21 voices), "
                                          "TESS (")
    assert learned_from(three).endswith("and EmoDB (German actors saying ten sentences, 9 voices)")
    assert learned_from({}) == "RAVDESS (North-American English actors saying two sentences)"  # an older checkpoint
