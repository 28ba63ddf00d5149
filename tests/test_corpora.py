"""The corpus loaders, on generated files named like each corpus's originals (SAVEE and CREMA-D are tested only this
way), the label table, the leave-one-corpus-out protocol and balanced sampling."""

import json
import shutil
import os
import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import FIXTURE, ROOT

from ser import RAVDESS_EMOTIONS
from train import corpora, data

RATE = 16000


def write_clip(path, seed=0, seconds=0.6):
    """A short generated clip (a tone in noise): the loaders read names and decode audio, they judge nothing."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * (150 + 10 * seed) * t) + 0.01 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), RATE)
    return path


def make_corpus(root, names):
    for i, name in enumerate(names):
        write_clip(root / name, seed=i)
    return root


def fields(ds, *columns):
    return sorted(zip(*(ds[c] for c in columns)))


def label(name):
    return RAVDESS_EMOTIONS.index(name)


TESS = ["OAF_Fear/OAF_back_fear.wav", "OAF_Pleasant_surprise/OAF_bar_ps.wav", "OAF_neutral/OA_bite_neutral.wav",
        "YAF_pleasant_surprised/YAF_chair_ps.wav", "YAF_sad/YAF_dog_sad.wav", "YAF_angry/YAF_back_angry.wav"]
EMODB = ["03a01Fa.wav", "08b02Wb.wav", "16a05Lc.wav", "10a07Ea.wav", "13b10Tb.wav", "11a02Aa.wav", "09b03Na.wav"]
SAVEE = ["DC_a01.wav", "KL_su15.wav", "JE/sa03.wav", "JK/n30.wav", "JK/h02.wav", "DC_d05.wav", "JE_f11.wav"]
CREMA_D = ["1001_DFA_ANG_XX.wav", "1091_IEO_HAP_HI.wav", "1045_TIE_SAD_LO.wav", "1002_MTI_NEU_XX.wav",
           "1003_WSI_FEA_MD.wav", "1004_ITH_DIS_XX.wav"]


def test_tess_names_give_speaker_word_and_emotion(tmp_path):
    ds = corpora.load_corpus("tess", str(make_corpus(tmp_path, TESS)))
    assert fields(ds, "speaker", "word", "emotion") == sorted([
        ("tess/OAF", "back", label("fearful")), ("tess/OAF", "bar", label("surprised")),
        ("tess/OAF", "bite", label("neutral")), ("tess/YAF", "chair", label("surprised")),
        ("tess/YAF", "dog", label("sad")), ("tess/YAF", "back", label("angry"))])
    assert set(ds["corpus"]) == {"tess"} and set(ds["gender"]) == {"female"}
    assert all(len(w) == int(0.6 * RATE) for w in ds["input_values"])


def test_emodb_names_give_speaker_text_emotion_version_and_leave_boredom_out(tmp_path):
    ds = corpora.load_corpus("emodb", str(make_corpus(tmp_path, EMODB)))
    assert fields(ds, "speaker", "gender", "text", "emotion", "version") == sorted([
        ("emodb/03", "male", "a01", label("happy"), "a"), ("emodb/08", "female", "b02", label("angry"), "b"),
        ("emodb/10", "male", "a07", label("disgust"), "a"), ("emodb/13", "female", "b10", label("sad"), "b"),
        ("emodb/11", "male", "a02", label("fearful"), "a"), ("emodb/09", "female", "b03", label("neutral"), "a")])
    assert "emodb/16" not in ds["speaker"]  # its only clip is boredom, which has no label


def test_savee_names_in_both_layouts(tmp_path):
    ds = corpora.load_corpus("savee", str(make_corpus(tmp_path, SAVEE)))
    assert fields(ds, "speaker", "sentence", "emotion") == sorted([
        ("savee/DC", 1, label("angry")), ("savee/KL", 15, label("surprised")), ("savee/JE", 3, label("sad")),
        ("savee/JK", 30, label("neutral")), ("savee/JK", 2, label("happy")), ("savee/DC", 5, label("disgust")),
        ("savee/JE", 11, label("fearful"))])


def test_crema_d_names_give_actor_sentence_emotion_and_level(tmp_path):
    ds = corpora.load_corpus("crema-d", str(make_corpus(tmp_path, CREMA_D)))
    assert fields(ds, "speaker", "sentence", "emotion", "level") == sorted([
        ("crema-d/1001", "DFA", label("angry"), "XX"), ("crema-d/1091", "IEO", label("happy"), "HI"),
        ("crema-d/1045", "TIE", label("sad"), "LO"), ("crema-d/1002", "MTI", label("neutral"), "XX"),
        ("crema-d/1003", "WSI", label("fearful"), "MD"), ("crema-d/1004", "ITH", label("disgust"), "XX")])


@pytest.mark.parametrize("corpus, name", [
    ("tess", "OAF_back.wav"), ("tess", "OAF_back_bored.wav"), ("emodb", "03a01Xa.wav"), ("emodb", "notes.wav"),
    ("savee", "XX_a01.wav"), ("savee", "DC_zz01.wav"), ("crema-d", "0999_DFA_ANG_XX.wav"),
    ("crema-d", "1001_DFA_JOY_XX.wav"), ("ravdess", "03-01-09-01-01-01-01.wav")])
def test_names_outside_a_layout_are_refused(corpus, name):
    with pytest.raises(ValueError, match=name.split(".")[0]):
        corpora.PARSERS[corpus](name)


def test_every_corpus_maps_onto_the_models_labels():
    for corpus, codes in corpora.LABEL_MAPS.items():
        assert set(codes.values()) - {None} <= set(RAVDESS_EMOTIONS), corpus
    assert corpora.LABEL_MAPS["emodb"]["L"] is None and corpora.LABEL_MAPS["tess"]["ps"] == "surprised"
    assert set(corpora.LABEL_MAPS["crema-d"].values()) == set(RAVDESS_EMOTIONS) - {"calm", "surprised"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_manifest_of_any_corpus(tmp_path, suffix):
    make_corpus(tmp_path / "clips", ["a.wav", "b.wav", "c.wav"])
    rows = [{"path": "clips/a.wav", "emotion": "Fear", "speaker": "s1", "corpus": "mine"},
            {"path": str(tmp_path / "clips" / "b.wav"), "emotion": "happy", "speaker": "s2", "corpus": "mine"},
            {"path": "clips/c.wav", "emotion": "", "speaker": "s2", "corpus": "mine"}]  # no emotion: left out
    manifest = tmp_path / f"manifest{suffix}"
    if suffix == ".csv":
        manifest.write_text("path,emotion,speaker,corpus\n" + "".join(
            f"{r['path']},{r['emotion']},{r['speaker']},{r['corpus']}\n" for r in rows))
    else:
        manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = corpora.load_corpus("manifest", str(manifest))
    assert fields(ds, "speaker", "corpus", "emotion") == [("mine/s1", "mine", label("fearful")),
                                                          ("mine/s2", "mine", label("happy"))]
    bad = tmp_path / "bad.csv"
    bad.write_text("path,emotion,speaker,corpus\nclips/a.wav,bored,s1,mine\n")
    with pytest.raises(ValueError, match="unknown emotion 'bored'"):
        corpora.load_corpus("manifest", str(bad))
    (tmp_path / "short.csv").write_text("path,emotion\nclips/a.wav,happy\n")
    with pytest.raises(ValueError, match="speaker"):
        corpora.load_corpus("manifest", str(tmp_path / "short.csv"))


def test_a_hub_dataset_with_a_column_mapping_and_the_corpus_codes(tmp_path):
    import datasets

    clips = [str(write_clip(tmp_path / "audio" / f"{i}.wav", seed=i)) for i in range(4)]
    ds = datasets.Dataset.from_dict({"file": clips, "label": ["W", "L", "F", "N"], "spk": ["03", "03", "08", "08"]})
    ds.cast_column("file", datasets.Audio()).to_parquet(str(tmp_path / "repo" / "data" / "train-00000.parquet"))
    loaded = corpora.load_corpus("emodb", str(tmp_path / "repo"),
                                 hub_columns={"audio": "file", "emotion": "label", "speaker": "spk"})
    assert fields(loaded, "speaker", "emotion") == sorted([("emodb/03", label("angry")), ("emodb/08", label("happy")),
                                                           ("emodb/08", label("neutral"))])


@pytest.fixture(scope="module")
def three_corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    return {"ravdess": str(FIXTURE), "tess": str(make_corpus(root / "tess", TESS)),
            "emodb": str(make_corpus(root / "emodb", EMODB))}


def test_several_corpora_share_one_schema_with_unique_speakers(three_corpora):
    ds = corpora.load_corpora(three_corpora)
    assert ds.column_names == corpora.COMMON_COLUMNS
    assert {c: ds["corpus"].count(c) for c in set(ds["corpus"])} == {"ravdess": 32, "tess": 6, "emodb": 6}
    assert all(s.split("/")[0] == c for s, c in zip(ds["speaker"], ds["corpus"]))


def test_loco_never_trains_on_the_held_out_corpus_and_validation_speakers_stay_apart(three_corpora):
    ds = corpora.load_corpora(three_corpora)
    for held_out in ("ravdess", "tess", "emodb"):
        for seed in range(3):
            splits = data.split_dataset(ds, "loco", fold=held_out, seed=seed, validation_actors=2)
            assert set(splits["test"]["corpus"]) == {held_out}
            assert len(splits["test"]) == ds["corpus"].count(held_out)
            for name in ("train", "validation"):
                assert held_out not in set(splits[name]["corpus"]), (held_out, name)
            train, validation = set(splits["train"]["speaker"]), set(splits["validation"]["speaker"])
            assert not train & validation and len(validation) == 2
            # Validation comes from corpora with at least 4 speakers, so TESS keeps both its voices.
            assert not {s for s in validation if s.startswith("tess/")}
    with pytest.raises(ValueError, match="corpus"):
        data.split_dataset(ds, "loco", fold="savee")


def test_emobox_tests_on_ravdess_actors_and_trains_on_the_other_corpora_too(three_corpora):
    ds = corpora.load_corpora(three_corpora)
    splits = data.split_dataset(ds, "emobox", fold=2)  # fixture actors 1-4; fold 2 tests on actor 4
    assert set(splits["test"]["speaker"]) == {"ravdess/04"}
    assert set(splits["train"]["corpus"]) == {"ravdess", "tess", "emodb"}
    assert "ravdess/04" not in splits["train"]["speaker"]


def test_balanced_sampling_draws_each_corpus_or_speaker_as_often(three_corpora):
    ds = corpora.load_corpora(three_corpora)
    weights = data.sampling_weights(ds, "corpus")
    corpus = np.asarray(ds["corpus"])
    assert {c: round(float(weights[corpus == c].sum()), 6) for c in set(corpus)} == {
        "ravdess": round(1 / 3, 6), "tess": round(1 / 3, 6), "emodb": round(1 / 3, 6)}
    weights = data.sampling_weights(ds, "speaker")
    speaker = np.asarray(ds["speaker"])
    assert np.allclose([weights[speaker == s].sum() for s in set(speaker)], 1 / len(set(speaker)))
    assert data.sampling_weights(ds, "none") is None
    assert data.sampling_weights(ds.filter(lambda c: c == "ravdess", input_columns="corpus"), "corpus") is None


@pytest.mark.slow
def test_a_tiny_loco_run_writes_every_artifact(three_corpora, tmp_path):
    from train.cli import main

    args = ["--data", f"ravdess={three_corpora['ravdess']}", "--data", f"tess={three_corpora['tess']}",
            "--data", f"emodb={three_corpora['emodb']}", "--protocol", "loco", "--epochs", "1", "--batch-size", "8",
            "--workers", "0", "--no-augment", "pitch", "stretch", "--output-dir", str(tmp_path)]
    runs = main(args)
    assert set(runs) == {"ravdess", "tess", "emodb"}
    for held_out, metrics in runs.items():
        for name in ("metrics.json", "classification_report.txt", "confusion_matrix.png", "learning_curves.png",
                     "model/model.safetensors", "model/config.json"):
            assert (tmp_path / held_out / name).is_file(), (held_out, name)
        assert set(metrics["corpora"]["test"]) == {held_out} and held_out not in metrics["corpora"]["train"]
        config = json.loads((tmp_path / held_out / "model" / "config.json").read_text())
        assert config["training_data"] == metrics["corpora"]["train"]
        assert 0 < metrics["top_class_share"] <= 1
    # TESS and EmoDB lack some of the model's classes: they are also scored on their own classes alone.
    restricted = runs["emodb"]["restricted"]
    assert restricted["classes"] == sorted({RAVDESS_EMOTIONS[e] for e in corpora.load_corpus(
        "emodb", three_corpora["emodb"])["emotion"]}, key=RAVDESS_EMOTIONS.index)
    assert "restricted" not in runs["ravdess"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["runs"]) == {"ravdess", "tess", "emodb"} and "restricted" in summary["runs"]["tess"]
    assert "restricted UA" in (tmp_path / "summary.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate", path=str(ROOT / ".venv" / "bin")) is None and
                    shutil.which("accelerate") is None, reason="accelerate's launcher is not installed")
def test_two_processes_through_accelerate(tmp_path):
    """`accelerate launch --cpu --num_processes 2 -m train ...`: the path to multi-GPU and multi-node training."""
    launcher = shutil.which("accelerate", path=str(ROOT / ".venv" / "bin")) or shutil.which("accelerate")
    run = subprocess.run([launcher, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "train", "--data", str(FIXTURE),
                          "--protocol", "full", "--validation-actors", "2", "--epochs", "2", "--batch-size", "8",
                          "--workers", "0", "--no-augment", "pitch", "stretch", "--output-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["train_loss_per_epoch"]) == 2 and metrics["evaluated_on"] == "validation"
    assert (tmp_path / "model" / "model.safetensors").is_file()


def test_data_values_name_corpora_and_expand_a_home_folder(monkeypatch):
    from train.cli import parse_sources

    monkeypatch.setenv("HOME", "/home/someone")
    assert parse_sources(["ravdess=user/ravdess", "emodb=~/data/emodb", "tess=/data/tess"]) == {
        "ravdess": "user/ravdess", "emodb": "/home/someone/data/emodb", "tess": "/data/tess"}
    assert parse_sources(["/data/ravdess"]) == {"ravdess": "/data/ravdess"}
    assert parse_sources(None) == {"ravdess": None}
    with pytest.raises(SystemExit, match="names tess twice"):
        parse_sources(["tess=/a", "tess=/b"])
