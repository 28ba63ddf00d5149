"""Splits that keep speakers apart, class subsets, sampling balanced across corpora and speakers, and the
augmentation of the training split. Loading lives in `train.corpora`."""

from __future__ import annotations

import random

import datasets
import numpy as np
import torch

from ser import RAVDESS_EMOTIONS

# EmoBox (Interspeech 2024) speaker-independent folds: the test actors of each RAVDESS fold.
EMOBOX_FOLDS = {
    1: (1, 11, 20, 21),
    2: (4, 10, 12, 14),
    3: (8, 9, 19, 23),
    4: (3, 5, 7, 24),
    5: (2, 15, 16, 18),
    6: (6, 13, 17, 22),
}
PROTOCOLS = ("emobox", "loco", "random", "full")
BALANCING = ("none", "corpus", "speaker")


def select_classes(ds: datasets.Dataset, classes: list[str]) -> tuple[datasets.Dataset, dict[int, str]]:
    """Keep only `classes` (names from `RAVDESS_EMOTIONS`) and renumber them 0..n-1 in that order."""
    unknown = [c for c in classes if c not in RAVDESS_EMOTIONS]
    if unknown:
        raise ValueError(f"unknown emotion(s) {unknown}; choose from {list(RAVDESS_EMOTIONS)}")
    keep = [RAVDESS_EMOTIONS.index(c) for c in classes]
    ds = ds.filter(lambda e: e in keep, input_columns="emotion")
    ds = ds.map(lambda e: {"emotion": keep.index(e)}, input_columns="emotion")
    return ds, dict(enumerate(classes))


# Speakers of the training pool held out as validation. Validation never chooses the weights, so by default every
# speaker outside the test split trains; holding some out draws a validation curve, and judges candidate recipes.
VALIDATION_ACTORS = 0


def emobox_speakers(fold: int) -> set[str]:
    """The RAVDESS speakers that EmoBox fold `fold` tests on."""
    if fold not in EMOBOX_FOLDS:
        raise ValueError(f"--fold must be one of 1..6 for the emobox protocol, got {fold}")
    return {f"ravdess/{actor:02d}" for actor in EMOBOX_FOLDS[fold]}


def split_dataset(ds: datasets.Dataset, protocol: str, fold: int | str | None = None, seed: int = 0,
                  validation_actors: int = VALIDATION_ACTORS) -> datasets.DatasetDict:
    """train / validation / test splits under a named protocol; no speaker is in two of them, but under `random`.

    - `emobox`: test = the 4 RAVDESS actors of EmoBox fold `fold`; every other speaker, of any corpus, trains.
    - `loco` (leave one corpus out): test = every clip of corpus `fold`; the other corpora train.
    - `random`: clips split 80/20 stratified by emotion, then 10 % of train for validation, whatever
      `validation_actors` says. The same speaker is in train and test: speaker-DEPENDENT, kept only to compare
      with earlier projects.
    - `full`: every speaker trains the release model; no test.

    `validation_actors` speakers of the training pool (half male, half of the others, chosen by `seed`, from
    corpora with at least 4 speakers so that no corpus loses half its voices) form the validation split; with 0
    there is none.
    """
    if validation_actors < 0:
        raise ValueError(f"validation_actors must be 0 or more, got {validation_actors}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    speakers = np.asarray(ds["speaker"])
    if protocol == "random":
        from sklearn.model_selection import train_test_split

        labels = np.asarray(ds["emotion"])
        index = np.arange(len(ds))
        train, test = train_test_split(index, test_size=0.2, stratify=labels, random_state=seed)
        train, val = train_test_split(train, test_size=0.1, stratify=labels[train], random_state=seed)
        return datasets.DatasetDict(train=ds.select(train), validation=ds.select(val), test=ds.select(test))
    corpora = np.asarray(ds["corpus"])
    if protocol == "emobox":
        test_speakers = emobox_speakers(fold)
    elif protocol == "loco":
        if fold not in set(corpora.tolist()):
            raise ValueError(f"--fold must name a corpus of the data for the loco protocol ({sorted(set(corpora))}), "
                             f"got {fold!r}")
        if len(set(corpora.tolist())) < 2:
            raise ValueError("the loco protocol needs at least two corpora")
        test_speakers = set(speakers[corpora == fold].tolist())
    else:
        test_speakers = set()
    pool = sorted(set(speakers.tolist()) - test_speakers)
    gender = dict(zip(speakers.tolist(), ds["gender"]))
    corpus_of = dict(zip(speakers.tolist(), corpora.tolist()))
    voices = {c: sum(corpus_of[s] == c for s in pool) for c in set(corpus_of.values())}
    candidates = [s for s in pool if voices[corpus_of[s]] >= 4]
    males = [s for s in candidates if gender[s] == "male"]
    others = [s for s in candidates if gender[s] != "male"]
    rng = random.Random(seed)
    val_speakers = set(rng.sample(males, validation_actors // 2)
                       + rng.sample(others, validation_actors - validation_actors // 2))
    groups = {"train": set(pool) - val_speakers, "validation": val_speakers, "test": test_speakers}
    return datasets.DatasetDict({
        name: ds.select(np.flatnonzero(np.isin(speakers, sorted(group))))
        for name, group in groups.items() if group
    })


def sampling_weights(split: datasets.Dataset, balance: str) -> np.ndarray | None:
    """Weights for drawing the training clips so that each corpus (or each speaker) is drawn as often, whatever its
    number of clips; None for "none", or where there is one corpus (or each speaker has as many clips)."""
    if balance not in BALANCING:
        raise ValueError(f"balance must be one of {BALANCING}, got {balance!r}")
    if balance == "none":
        return None
    groups = np.asarray(split["corpus" if balance == "corpus" else "speaker"])
    names, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    if len(set(counts.tolist())) == 1:
        return None
    return 1.0 / (len(names) * counts[index])


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
