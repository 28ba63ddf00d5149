"""RAVDESS through the `datasets` library: loading, file-name fields, actor-disjoint splits, augmentation."""

from __future__ import annotations

import random
from pathlib import Path

import datasets
import numpy as np
import torch

from ser import RAVDESS_EMOTIONS

ZENODO_URL = "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip"

# EmoBox (Interspeech 2024) speaker-independent folds: the test actors of each fold.
EMOBOX_FOLDS = {
    1: (1, 11, 20, 21),
    2: (4, 10, 12, 14),
    3: (8, 9, 19, 23),
    4: (3, 5, 7, 24),
    5: (2, 15, 16, 18),
    6: (6, 13, 17, 22),
}
PROTOCOLS = ("emobox", "random", "full")
EMOTION_ALIASES = {"fear": "fearful", "surprise": "surprised", "disgusted": "disgust", "happiness": "happy",
                   "sadness": "sad", "anger": "angry"}


def parse_filename(name: str) -> dict:
    """Fields of a RAVDESS file name `MM-VV-EE-II-SS-RR-AA.ext` (see the dataset's README).

    Returns emotion (0-based id in `RAVDESS_EMOTIONS`), intensity, statement, repetition, actor, gender,
    and vocal_channel. Raises `ValueError` for a name that does not follow the scheme.
    """
    # Files inside an archive come as "zip://Actor_01/NAME.wav::/path/archive.zip".
    stem = Path(name.split("::")[0]).name.split(".")[0]
    parts = stem.split("-")
    if len(parts) != 7 or not all(len(p) == 2 and p.isdigit() for p in parts):
        raise ValueError(f"{name!r} is not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA.wav)")
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, parts)
    checks = [(modality, 1, 3, "modality"), (channel, 1, 2, "vocal channel"), (emotion, 1, 8, "emotion"),
              (intensity, 1, 2, "intensity"), (statement, 1, 2, "statement"), (repetition, 1, 2, "repetition"),
              (actor, 1, 24, "actor")]
    for value, low, high, field in checks:
        if not low <= value <= high:
            raise ValueError(f"{name!r}: {field} code {value:02d} is outside {low:02d}..{high:02d}")
    return {
        "emotion": emotion - 1,
        "intensity": "normal" if intensity == 1 else "strong",
        "statement": statement,
        "repetition": repetition,
        "actor": actor,
        "gender": "male" if actor % 2 else "female",
        "vocal_channel": "speech" if channel == 1 else "song",
    }


def _add_fields(example):
    return parse_filename(example["audio"]["path"])


def _decode(batch, sampling_rate):
    # datasets hands out torchcodec decoders already resampled and downmixed by the Audio feature.
    return {"input_values": [a.get_all_samples().data[0].numpy() for a in batch["audio"]]}


def load_ravdess(source: str | None = None, sampling_rate: int = 16000, hub_columns: dict | None = None,
                 hub_split: str = "train") -> datasets.Dataset:
    """RAVDESS speech clips as a `datasets.Dataset` with columns input_values (mono float32 at
    `sampling_rate`), emotion (class id), intensity, statement, repetition, actor, gender.

    Args:
        source: a local folder in the original layout (`Actor_XX/*.wav` or `.flac`), a `.zip` archive
            path or URL (default: the official Zenodo archive), or a Hub dataset id (or a local copy of one).
        hub_columns: for a Hub dataset, which of its columns hold `audio`, `emotion` and `actor`,
            e.g. `{"audio": "audio", "emotion": "label", "actor": "speaker_id"}`.

    Decoded audio is cached by `datasets`, so a second run does not decode the files again.
    """
    source = source or ZENODO_URL
    is_archive = source.endswith(".zip")
    if is_archive or _holds_audio_files(source):
        kwargs = {"data_dir": source} if Path(source).is_dir() else {"data_files": source}
        # drop_labels: audiofolder would otherwise take the folder name, i.e. the actor, as the label.
        ds = datasets.load_dataset("audiofolder", drop_labels=True, split="train", **kwargs)
        ds = ds.cast_column("audio", datasets.Audio(decode=False))
        ds = ds.map(_add_fields, desc="parse file names")
        ds = ds.filter(lambda channel: channel == "speech", input_columns="vocal_channel")
    else:
        ds = _load_hub(source, hub_columns or {}, hub_split)
    if len(ds) == 0:
        raise ValueError(f"no RAVDESS speech clips found in {source}")
    ds = ds.cast_column("audio", datasets.Audio(sampling_rate=sampling_rate, num_channels=1))
    ds = ds.map(_decode, batched=True, batch_size=32, fn_kwargs={"sampling_rate": sampling_rate},
                remove_columns=["audio"], desc="decode audio")
    return ds.cast_column("input_values", datasets.Sequence(datasets.Value("float32")))


def _holds_audio_files(source: str) -> bool:
    """A folder of audio files (the original layout), as opposed to a dataset repository such as a Hub clone."""
    folder = Path(source)
    return folder.is_dir() and any(p.suffix.lower() in (".wav", ".flac") for p in folder.rglob("*"))


def _load_hub(name: str, columns: dict, split: str) -> datasets.Dataset:
    ds = datasets.load_dataset(name, split=split)
    mapping = {"audio": "audio", "emotion": "emotion", "actor": "actor", **columns}
    missing = [c for c in mapping.values() if c not in ds.column_names]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing}; its columns are {ds.column_names}. "
                         "Map them with --hub-columns audio=COL,emotion=COL,actor=COL")
    emotion_feature = ds.features[mapping["emotion"]]
    ds = ds.select_columns(list(mapping.values())).rename_columns(
        {old: new for new, old in mapping.items() if old != new})

    def normalise(example):
        value = example["emotion"]
        if isinstance(emotion_feature, datasets.ClassLabel):
            value = emotion_feature.int2str(value)
        if isinstance(value, str):
            value = value.strip().lower()
            value = RAVDESS_EMOTIONS.index(EMOTION_ALIASES.get(value, value))
        actor = int(str(example["actor"]).lower().removeprefix("actor_").removeprefix("actor"))
        return {"emotion": int(value), "actor": actor, "gender": "male" if actor % 2 else "female"}

    return ds.map(normalise, desc="normalise labels")


def select_classes(ds: datasets.Dataset, classes: list[str]) -> tuple[datasets.Dataset, dict[int, str]]:
    """Keep only `classes` (names from `RAVDESS_EMOTIONS`) and renumber them 0..n-1 in that order."""
    unknown = [c for c in classes if c not in RAVDESS_EMOTIONS]
    if unknown:
        raise ValueError(f"unknown emotion(s) {unknown}; choose from {list(RAVDESS_EMOTIONS)}")
    keep = [RAVDESS_EMOTIONS.index(c) for c in classes]
    ds = ds.filter(lambda e: e in keep, input_columns="emotion")
    ds = ds.map(lambda e: {"emotion": keep.index(e)}, input_columns="emotion")
    return ds, dict(enumerate(classes))


# Actors of the training pool held out as validation. Validation never chooses the weights, so by default every
# actor outside the test fold trains; holding some out draws a validation curve, and judges candidate recipes.
VALIDATION_ACTORS = 0


def split_dataset(ds: datasets.Dataset, protocol: str, fold: int | None = None, seed: int = 0,
                  validation_actors: int = VALIDATION_ACTORS) -> datasets.DatasetDict:
    """train / validation / test splits under a named protocol.

    - `emobox`: test = the 4 actors of EmoBox fold `fold`; validation = `validation_actors` of the
      remaining actors (half male, half female, chosen by `seed`); train = the rest. Speaker-independent.
    - `random`: clips split 80/20 stratified by emotion, then 10 % of train for validation, whatever
      `validation_actors` says (every actor is in every split). The same actor appears in train and test:
      speaker-DEPENDENT, kept only to compare with earlier projects.
    - `full`: all actors but `validation_actors` train the release model; no test.

    With `validation_actors` 0, `emobox` and `full` have no validation split.
    """
    if validation_actors < 0:
        raise ValueError(f"validation_actors must be 0 or more, got {validation_actors}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    actors = np.asarray(ds["actor"])
    if protocol == "random":
        from sklearn.model_selection import train_test_split

        labels = np.asarray(ds["emotion"])
        index = np.arange(len(ds))
        train, test = train_test_split(index, test_size=0.2, stratify=labels, random_state=seed)
        train, val = train_test_split(train, test_size=0.1, stratify=labels[train], random_state=seed)
        return datasets.DatasetDict(train=ds.select(train), validation=ds.select(val), test=ds.select(test))
    if protocol == "emobox":
        if fold not in EMOBOX_FOLDS:
            raise ValueError(f"--fold must be one of 1..6 for the emobox protocol, got {fold}")
        test_actors = set(EMOBOX_FOLDS[fold])
    else:
        test_actors = set()
    pool = sorted(set(actors.tolist()) - test_actors)
    rng = random.Random(seed)
    males, females = [a for a in pool if a % 2], [a for a in pool if not a % 2]
    val_actors = set(rng.sample(males, validation_actors // 2) + rng.sample(females, validation_actors - validation_actors // 2))
    groups = {"train": set(pool) - val_actors, "validation": val_actors, "test": test_actors}
    return datasets.DatasetDict({
        name: ds.select(np.flatnonzero(np.isin(actors, sorted(group))))
        for name, group in groups.items() if group
    })


def build_augmenter(noise: bool = True, pitch: bool = True, stretch: bool = True, shift: bool = True,
                    degrade: bool = True, probability: float = 0.3):
    """Waveform augmentation (audiomentations) for the training split; `None` when all are off.

    `degrade` adds the conditions of `bench.robustness` at training strength: coloured noise (white to pink and
    beyond) at 0-20 dB SNR, a telephone-like band (high-pass 200-400 Hz, low-pass 3-4 kHz) and hard clipping.
    Babble needs other clips, so `AugmentedSplit` adds it."""
    if not (degrade or noise or pitch or stretch or shift):
        return None
    import audiomentations as A

    steps = []
    if degrade:
        steps += [A.AddColorNoise(min_snr_db=0.0, max_snr_db=20.0, min_f_decay=-6.0, max_f_decay=0.0, p=probability),
                  A.Compose([A.HighPassFilter(min_cutoff_freq=200.0, max_cutoff_freq=400.0, p=1.0),
                             A.LowPassFilter(min_cutoff_freq=3000.0, max_cutoff_freq=4000.0, p=1.0)],
                            p=probability / 2),
                  A.ClippingDistortion(min_percentile_threshold=0, max_percentile_threshold=20, p=probability / 2)]
    if noise:
        steps.append(A.AddGaussianSNR(min_snr_db=10.0, max_snr_db=40.0, p=probability))
    if pitch:
        steps.append(A.PitchShift(min_semitones=-2.0, max_semitones=2.0, method="signalsmith_stretch", p=probability))
    if stretch:
        steps.append(A.TimeStretch(min_rate=0.8, max_rate=1.2, leave_length_unchanged=False,
                                   method="signalsmith_stretch", p=probability))
    if shift:
        steps.append(A.Shift(min_shift=-0.2, max_shift=0.2, rollover=False, p=probability))
    return A.Compose(steps)


class AugmentedSplit(torch.utils.data.Dataset):
    """A training split whose waveforms are augmented afresh each time a row is read, with `babble` the share of
    rows that also get a crowd of other clips of the split. Only ever wraps a training split, after splitting, so
    evaluation data is never augmented.
    """

    def __init__(self, split: datasets.Dataset, augmenter, sampling_rate: int, babble: float = 0.0):
        self.split = as_arrays(split)
        self.augmenter = augmenter
        self.sampling_rate = sampling_rate
        self.babble = babble

    def __len__(self):
        return len(self.split)

    def _add_babble(self, wave: np.ndarray) -> np.ndarray:
        """Wave plus 3-5 other clips of the split (each at equal level, looped from a random point) at 0-20 dB SNR:
        the crowd of voices a phone or a meeting room adds, which stationary noise does not imitate."""
        crowd = np.zeros_like(wave)
        for _ in range(random.randint(3, 5)):
            other = self.split[random.randrange(len(self))]["input_values"]
            other = np.roll(np.resize(other, len(wave)), random.randrange(len(wave)))
            crowd += other / (np.sqrt(np.mean(other ** 2)) + 1e-8)
        snr_db = random.uniform(0.0, 20.0)
        level = np.sqrt(np.mean(wave ** 2)) / (np.sqrt(np.mean(crowd ** 2)) + 1e-8) / 10 ** (snr_db / 20)
        return (wave + level * crowd).astype(np.float32)

    def __getitem__(self, index):
        # `random` rather than NumPy: the DataLoader seeds it differently in each worker.
        row = self.split[int(index)]
        wave = row["input_values"]
        if self.augmenter is not None:
            wave = self.augmenter(wave, sample_rate=self.sampling_rate)
        if self.babble and random.random() < self.babble:
            wave = self._add_babble(wave)
        return {"input_values": wave, "emotion": int(row["emotion"])}


def as_arrays(split: datasets.Dataset) -> datasets.Dataset:
    """Rows as NumPy arrays: turning 60,000-sample waveforms into Python lists is slower than training."""
    return split.with_format("numpy", columns=["input_values", "emotion"])
