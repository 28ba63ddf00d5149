"""RAVDESS file names, protocols and the `datasets` loading path."""

import datasets
import numpy as np
import pytest
from conftest import FIXTURE, FIXTURE_CLIPS, FULL_RAVDESS, needs_full_ravdess

from ser import RAVDESS_EMOTIONS
from train import corpora, data


def test_parse_filename_reads_every_field():
    fields = corpora.parse_ravdess("Actor_13/03-01-07-02-01-02-13.flac")
    assert fields == {"emotion": 6, "intensity": "strong", "statement": 1, "repetition": 2, "actor": 13,
                      "gender": "male", "vocal_channel": "speech", "speaker": "ravdess/13"}
    assert RAVDESS_EMOTIONS[fields["emotion"]] == "disgust"
    other = corpora.parse_ravdess("03-02-01-01-02-01-24.wav")
    assert (other["emotion"], other["intensity"], other["statement"], other["repetition"], other["actor"],
            other["gender"], other["vocal_channel"]) == (0, "normal", 2, 1, 24, "female", "song")


@pytest.mark.parametrize("name", ["03-01-09-01-01-01-01.wav", "03-01-01-01-01-01-25.wav", "notes.txt",
                                  "03-01-01-01-01-01.wav", "03-01-0a-01-01-01-01.wav"])
def test_parse_filename_rejects_names_outside_the_scheme(name):
    with pytest.raises(ValueError, match="RAVDESS|outside"):
        corpora.parse_ravdess(name)


def metadata_dataset():
    """The 1440 (emotion, actor) rows of the real RAVDESS design, without audio."""
    rows = [{**corpora.parse_ravdess(f"03-01-{e:02d}-{i:02d}-{s:02d}-{r:02d}-{a:02d}.wav"), "corpus": "ravdess"}
            for a in range(1, 25) for e in range(1, 9) for i in (1, 2) for s in (1, 2) for r in (1, 2)
            if not (e == 1 and i == 2)]
    return datasets.Dataset.from_list(rows)


def test_emobox_folds_are_actor_disjoint_and_cover_all_actors_once():
    ds = metadata_dataset()
    assert len(ds) == 1440
    seen = []
    for fold in range(1, 7):
        splits = data.split_dataset(ds, "emobox", fold=fold, validation_actors=2)
        actors = {name: set(split["actor"]) for name, split in splits.items()}
        assert actors["test"] == set(data.EMOBOX_FOLDS[fold])
        assert not actors["train"] & actors["test"] and not actors["validation"] & actors["test"]
        assert not actors["train"] & actors["validation"]
        assert actors["train"] | actors["validation"] | actors["test"] == set(range(1, 25))
        assert {a % 2 for a in actors["validation"]} == {0, 1}  # one male, one female
        assert len(splits["test"]) == 240
        seen += sorted(actors["test"])
    assert sorted(seen) == list(range(1, 25))


def test_full_protocol_holds_out_validation_actors_and_has_no_test():
    splits = data.split_dataset(metadata_dataset(), "full", seed=3, validation_actors=2)
    assert set(splits) == {"train", "validation"}
    assert not set(splits["train"]["actor"]) & set(splits["validation"]["actor"])
    assert len(splits["train"]) + len(splits["validation"]) == 1440


def test_no_validation_actors_puts_the_whole_training_pool_in_training():
    ds = metadata_dataset()
    for fold in range(1, 7):
        kept = data.split_dataset(ds, "emobox", fold=fold, validation_actors=2)
        pooled = data.split_dataset(ds, "emobox", fold=fold)  # no validation actors: the default
        assert set(pooled) == {"train", "test"}
        assert set(pooled["train"]["actor"]) == set(kept["train"]["actor"]) | set(kept["validation"]["actor"])
        assert set(pooled["test"]["actor"]) == set(data.EMOBOX_FOLDS[fold])
        assert len(pooled["train"]) == 1200
    assert set(data.split_dataset(ds, "full")) == {"train"}
    assert len(data.split_dataset(ds, "full")["train"]) == 1440
    # `random` has no validation actors to give (every actor is in every split): its 10 % of clips stay.
    assert ({k: len(v) for k, v in data.split_dataset(ds, "random").items()}
            == {k: len(v) for k, v in data.split_dataset(ds, "random", validation_actors=2).items()})
    with pytest.raises(ValueError, match="validation_actors"):
        data.split_dataset(ds, "emobox", fold=1, validation_actors=-1)


def test_random_protocol_is_stratified_clip_split():
    ds = metadata_dataset()
    splits = data.split_dataset(ds, "random", seed=0)
    assert len(splits["test"]) == 288
    counts = np.bincount(splits["test"]["emotion"], minlength=8)
    assert counts[0] == pytest.approx(96 * 0.2, abs=1) and counts[1:].min() >= 38
    # Speaker-dependent by design: the same actors are on both sides.
    assert set(splits["train"]["actor"]) == set(splits["test"]["actor"])


def test_unknown_protocol_and_fold_are_refused():
    with pytest.raises(ValueError, match="protocol"):
        data.split_dataset(metadata_dataset(), "leaky")
    with pytest.raises(ValueError, match="fold"):
        data.split_dataset(metadata_dataset(), "emobox", fold=7)


@pytest.fixture(scope="module")
def fixture_dataset():
    return corpora.load_ravdess(str(FIXTURE))


def test_load_local_folder_parses_labels_from_file_names_not_folders(fixture_dataset):
    ds = fixture_dataset
    assert len(ds) == len(FIXTURE_CLIPS) == 32
    assert sorted(set(ds["actor"])) == [1, 2, 3, 4]
    assert sorted(ds["emotion"]) == sorted(list(range(8)) * 4)
    row = ds[0]
    wave = np.asarray(row["input_values"], dtype=np.float32)
    assert 2.5 * 16000 < len(wave) < 6 * 16000  # decoded at 16 kHz
    assert 0.001 < np.abs(wave).max() <= 1.0


def test_load_zip_archive_like_the_zenodo_release(tmp_path, fixture_dataset):
    import zipfile

    archive = tmp_path / "Audio_Speech_Actors_01-24.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for clip in FIXTURE_CLIPS[:8]:
            z.write(clip, f"{clip.parent.name}/{clip.name}")
    ds = corpora.load_ravdess(str(archive))
    assert len(ds) == 8 and set(ds["actor"]) == {1}
    assert sorted(ds["emotion"]) == list(range(8))


def test_load_hub_style_dataset_with_column_mapping(tmp_path):
    """A dataset repository (here a local one, as the Hub cannot be reached) with other column names."""
    ds = datasets.Dataset.from_dict({
        "file": [str(p) for p in FIXTURE_CLIPS[:6]],
        "label": ["neutral", "calm", "happy", "sad", "angry", "fear"],
        "speaker": ["Actor_01"] * 6,
    }).cast_column("file", datasets.Audio())
    ds.to_parquet(str(tmp_path / "data" / "train-00000.parquet"))
    loaded = corpora.load_ravdess(str(tmp_path), hub_columns={"audio": "file", "emotion": "label"})
    assert loaded["emotion"] == [0, 1, 2, 3, 4, 5]
    assert loaded["actor"] == [1] * 6 and loaded["speaker"] == ["ravdess/01"] * 6
    with pytest.raises(ValueError, match="no column"):
        corpora.load_ravdess(str(tmp_path))


def test_class_subset_renumbers_labels(fixture_dataset):
    subset, id2label = data.select_classes(fixture_dataset, ["angry", "happy", "sad"])
    assert id2label == {0: "angry", 1: "happy", 2: "sad"}
    assert sorted(set(subset["emotion"])) == [0, 1, 2] and len(subset) == 12


def test_augmentation_changes_training_rows_and_never_evaluation_rows(fixture_dataset):
    splits = data.split_dataset(fixture_dataset, "full", seed=0, validation_actors=2)
    before = {name: [np.asarray(x) for x in split["input_values"]] for name, split in splits.items()}
    train = data.AugmentedSplit(splits["train"], data.build_augmenter(probability=1.0), 16000)
    augmented = [train[i]["input_values"] for i in range(len(train))]
    assert all(not (len(a) == len(b) and np.allclose(a, b)) for a, b in zip(before["train"], augmented))
    assert [int(train[i]["emotion"]) for i in range(len(train))] == splits["train"]["emotion"]
    # The evaluation split, and the training split itself, still read back exactly as decoded.
    for name, split in splits.items():
        assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before[name], split["input_values"]))


@needs_full_ravdess
def test_full_ravdess_loads_1440_clips_with_the_documented_balance():
    ds = corpora.load_ravdess(str(FULL_RAVDESS))
    assert len(ds) == 1440
    assert np.bincount(ds["emotion"]).tolist() == [96] + [192] * 7
    assert sorted(set(ds["actor"])) == list(range(1, 25))
