"""Emotional speech corpora through the `datasets` library: one loader per well-known layout, a generic manifest,
and one table that maps each corpus's emotions onto the model's labels.

Every clip comes out with the same columns: input_values (mono float32 at the model's rate), emotion (an id in
`ser.RAVDESS_EMOTIONS`), speaker (unique across corpora: "tess/OAF"), corpus and gender, so that any split can keep
speakers apart. A corpus's own fields (RAVDESS's actor, intensity, ...) stay when it is loaded alone.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets

from ser import RAVDESS_EMOTIONS

ZENODO_URL = "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip"
COMMON_COLUMNS = ["input_values", "emotion", "speaker", "corpus", "gender"]

# Each corpus's emotion codes -> the model's labels (`RAVDESS_EMOTIONS`). A code mapped to None is left out (EmoDB's
# boredom has no counterpart); a label missing from a corpus is simply absent from its clips.
LABEL_MAPS = {
    "ravdess": {f"{i + 1:02d}": label for i, label in enumerate(RAVDESS_EMOTIONS)},
    "tess": {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry", "fear": "fearful",
             "disgust": "disgust", "ps": "surprised"},
    "emodb": {"N": "neutral", "F": "happy", "T": "sad", "W": "angry", "A": "fearful", "E": "disgust", "L": None},
    "savee": {"n": "neutral", "h": "happy", "sa": "sad", "a": "angry", "f": "fearful", "d": "disgust",
              "su": "surprised"},
    "crema-d": {"NEU": "neutral", "HAP": "happy", "SAD": "sad", "ANG": "angry", "FEA": "fearful", "DIS": "disgust"},
}
# Other spellings of the model's labels, for manifests and Hub datasets.
EMOTION_ALIASES = {"fear": "fearful", "surprise": "surprised", "disgusted": "disgust", "happiness": "happy",
                   "sadness": "sad", "anger": "angry", "pleasant surprise": "surprised", "ps": "surprised",
                   "joy": "happy"}
EMODB_MALE = {"03", "10", "11", "12", "15"}
SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")


def label_id(name: str | None) -> int | None:
    """The model's class id of an emotion name or alias (case-insensitive), None for None."""
    if name is None:
        return None
    name = str(name).strip().lower()
    name = EMOTION_ALIASES.get(name, name)
    if name not in RAVDESS_EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; use one of {list(RAVDESS_EMOTIONS)} (or leave the row out)")
    return RAVDESS_EMOTIONS.index(name)


def _stem(path: str) -> str:
    # Files inside an archive come as "zip://Actor_01/NAME.wav::/path/archive.zip".
    return Path(path.split("::")[0]).name.rsplit(".", 1)[0]


def parse_ravdess(path: str) -> dict:
    """Fields of a RAVDESS file name `MM-VV-EE-II-SS-RR-AA.ext` (see the dataset's README): emotion (model id),
    intensity, statement, repetition, actor, gender, vocal_channel, speaker. Raises `ValueError` for a name that
    does not follow the scheme."""
    parts = _stem(path).split("-")
    if len(parts) != 7 or not all(len(p) == 2 and p.isdigit() for p in parts):
        raise ValueError(f"{path!r} is not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA.wav)")
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, parts)
    checks = [(modality, 1, 3, "modality"), (channel, 1, 2, "vocal channel"), (emotion, 1, 8, "emotion"),
              (intensity, 1, 2, "intensity"), (statement, 1, 2, "statement"), (repetition, 1, 2, "repetition"),
              (actor, 1, 24, "actor")]
    for value, low, high, field in checks:
        if not low <= value <= high:
            raise ValueError(f"{path!r}: {field} code {value:02d} is outside {low:02d}..{high:02d}")
    return {
        "emotion": emotion - 1,
        "intensity": "normal" if intensity == 1 else "strong",
        "statement": statement,
        "repetition": repetition,
        "actor": actor,
        "gender": "male" if actor % 2 else "female",
        "vocal_channel": "speech" if channel == 1 else "song",
        "speaker": f"ravdess/{actor:02d}",
    }


def parse_tess(path: str) -> dict:
    """TESS: `OAF_back_angry.wav` in a folder such as `OAF_angry/` (folder names vary in case): speaker (OAF, the
    older, or YAF, the younger actress), word, and the emotion as the last field; `ps` is pleasant surprise."""
    fields = _stem(path).split("_")
    if len(fields) < 3:
        raise ValueError(f"{path!r} is not a TESS file name (expected SPEAKER_WORD_EMOTION.wav)")
    code = fields[-1].lower()
    if code not in LABEL_MAPS["tess"]:
        raise ValueError(f"{path!r}: unknown TESS emotion {fields[-1]!r}")
    # One original file is named OA_... instead of OAF_...
    speaker = {"OA": "OAF", "YA": "YAF"}.get(fields[0].upper(), fields[0].upper())
    return {"emotion": label_id(LABEL_MAPS["tess"][code]), "speaker": f"tess/{speaker}", "gender": "female",
            "word": "_".join(fields[1:-1])}


def parse_emodb(path: str) -> dict:
    """EmoDB: `03a01Fa.wav`: speaker (2 digits), text (a01-b10), German emotion letter, version. Boredom (L) maps to
    no label: its emotion is None."""
    stem = _stem(path)
    if len(stem) != 7 or not stem[:2].isdigit() or stem[5] not in LABEL_MAPS["emodb"]:
        raise ValueError(f"{path!r} is not an EmoDB file name (expected SSTTTEV.wav, e.g. 03a01Fa.wav)")
    speaker, text, letter, version = stem[:2], stem[2:5], stem[5], stem[6]
    return {"emotion": label_id(LABEL_MAPS["emodb"][letter]), "speaker": f"emodb/{speaker}",
            "gender": "male" if speaker in EMODB_MALE else "female", "text": text, "version": version}


def parse_savee(path: str) -> dict:
    """SAVEE: `DC_a01.wav`, or `a01.wav` inside a speaker folder (DC, JE, JK, KL, all male); the emotion code is
    a, d, f, h, n, sa or su, then the sentence number."""
    stem = _stem(path)
    speaker, _, code = stem.rpartition("_")
    if not speaker:
        speaker = Path(path.split("::")[0]).parent.name
    speaker = speaker.upper()
    letters = code.rstrip("0123456789").lower()
    if speaker not in SAVEE_SPEAKERS or letters not in LABEL_MAPS["savee"] or letters == code:
        raise ValueError(f"{path!r} is not a SAVEE file (expected DC_a01.wav, or a01.wav in a folder named DC, JE, "
                         "JK or KL)")
    return {"emotion": label_id(LABEL_MAPS["savee"][letters]), "speaker": f"savee/{speaker}", "gender": "male",
            "sentence": int(code[len(letters):])}


def parse_crema_d(path: str) -> dict:
    """CREMA-D: `1001_DFA_ANG_XX.wav`: actor (1001-1091), sentence code, emotion (ANG, DIS, FEA, HAP, NEU, SAD)
    and level (LO, MD, HI, XX)."""
    fields = _stem(path).split("_")
    if len(fields) != 4 or not fields[0].isdigit() or not 1001 <= int(fields[0]) <= 1091 or \
            fields[2] not in LABEL_MAPS["crema-d"]:
        raise ValueError(f"{path!r} is not a CREMA-D file name (expected 1001_DFA_ANG_XX.wav)")
    return {"emotion": label_id(LABEL_MAPS["crema-d"][fields[2]]), "speaker": f"crema-d/{fields[0]}",
            "gender": "unknown", "sentence": fields[1], "level": fields[3]}


PARSERS = {"ravdess": parse_ravdess, "tess": parse_tess, "emodb": parse_emodb, "savee": parse_savee,
           "crema-d": parse_crema_d}
CORPORA = (*PARSERS, "manifest")


def _decode(batch):
    # datasets hands out torchcodec decoders already resampled and downmixed by the Audio feature.
    return {"input_values": [a.get_all_samples().data[0].numpy() for a in batch["audio"]]}


def _decoded(ds: datasets.Dataset, sampling_rate: int) -> datasets.Dataset:
    """The audio column decoded to input_values at `sampling_rate` (cached by `datasets`)."""
    ds = ds.cast_column("audio", datasets.Audio(sampling_rate=sampling_rate, num_channels=1))
    ds = ds.map(_decode, batched=True, batch_size=32, remove_columns=["audio"], desc="decode audio")
    return ds.cast_column("input_values", datasets.Sequence(datasets.Value("float32")))


def _holds_audio_files(source: str) -> bool:
    """A folder of audio files (an original layout), as opposed to a dataset repository such as a Hub clone."""
    folder = Path(source)
    return folder.is_dir() and any(p.suffix.lower() in (".wav", ".flac") for p in folder.rglob("*"))


def load_corpus(name: str, source: str | None = None, sampling_rate: int = 16000, hub_columns: dict | None = None,
                hub_split: str = "train") -> datasets.Dataset:
    """One corpus as a `datasets.Dataset` with the columns of the module docstring.

    Args:
        name: a layout of `PARSERS` (ravdess, tess, emodb, savee, crema-d), or "manifest".
        source: a local folder in the corpus's original layout, a `.zip` archive (path or URL; RAVDESS defaults to
            the official Zenodo archive), a Hub dataset id (or a local copy of one), or for "manifest" a CSV or
            JSONL file (see `load_manifest`).
        hub_columns: for a Hub dataset, which of its columns hold `audio`, `emotion` and `speaker`, e.g.
            `{"audio": "audio", "emotion": "label", "speaker": "speaker_id"}`.
    """
    if name == "manifest":
        return load_manifest(source, sampling_rate)
    if name not in PARSERS:
        raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(CORPORA)}")
    if source is None and name != "ravdess":
        raise ValueError(f"{name}: give the folder (or Hub dataset) that holds it")
    source = str(source or ZENODO_URL)
    if source.endswith(".zip") or _holds_audio_files(source):
        kwargs = {"data_dir": source} if Path(source).is_dir() else {"data_files": source}
        # drop_labels: audiofolder would otherwise take the folder name (an actor, an emotion) as the label.
        ds = datasets.load_dataset("audiofolder", drop_labels=True, split="train", **kwargs)
        ds = ds.cast_column("audio", datasets.Audio(decode=False))
        ds = ds.map(lambda audio: PARSERS[name](audio["path"]), input_columns="audio", desc=f"parse {name} names")
        if name == "ravdess":
            ds = ds.filter(lambda channel: channel == "speech", input_columns="vocal_channel")
        ds = ds.filter(lambda emotion: emotion is not None, input_columns="emotion")
    else:
        ds = _load_hub(name, source, hub_columns or {}, hub_split)
    if len(ds) == 0:
        raise ValueError(f"no {name} clips found in {source}")
    ds = ds.add_column("corpus", [name] * len(ds))
    return _decoded(ds, sampling_rate)


def load_ravdess(source: str | None = None, sampling_rate: int = 16000, hub_columns: dict | None = None,
                 hub_split: str = "train") -> datasets.Dataset:
    """RAVDESS speech clips (`load_corpus("ravdess", ...)`), with its file-name fields."""
    return load_corpus("ravdess", source, sampling_rate, hub_columns, hub_split)


def _load_hub(corpus: str, name: str, columns: dict, split: str) -> datasets.Dataset:
    ds = datasets.load_dataset(name, split=split)
    mapping = {"audio": "audio", "emotion": "emotion", "speaker": "speaker", **columns}
    missing = [c for c in mapping.values() if c not in ds.column_names]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing}; its columns are {ds.column_names}. "
                         "Map them with --hub-columns audio=COL,emotion=COL,speaker=COL")
    emotion_feature = ds.features[mapping["emotion"]]
    ds = ds.select_columns(list(mapping.values())).rename_columns(
        {old: new for new, old in mapping.items() if old != new})
    codes = LABEL_MAPS.get(corpus, {})

    def normalise(example):
        value = example["emotion"]
        if isinstance(emotion_feature, datasets.ClassLabel):
            value = emotion_feature.int2str(value)
        if isinstance(value, str):
            # The corpus's own codes first (e.g. EmoDB's letters), then the model's labels and their aliases.
            value = codes[value] if value in codes else value
            value = label_id(value) if value is not None else None
        speaker = str(example["speaker"])
        fields = {"emotion": value, "speaker": f"{corpus}/{speaker}", "gender": "unknown"}
        if corpus == "ravdess":
            actor = int(speaker.lower().removeprefix("actor_").removeprefix("actor"))
            fields.update(actor=actor, gender="male" if actor % 2 else "female", speaker=f"ravdess/{actor:02d}")
        return fields

    ds = ds.map(normalise, desc="normalise labels")
    return ds.filter(lambda emotion: emotion is not None, input_columns="emotion")


def load_manifest(path: str | Path, sampling_rate: int = 16000) -> datasets.Dataset:
    """Any other corpus, from a CSV or JSONL manifest with one row per clip: path (absolute, or relative to the
    manifest), emotion (a model label or alias; rows with an empty emotion are left out), speaker and corpus."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file))
    missing = {"path", "emotion", "speaker", "corpus"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{path}: the manifest lacks column(s) {sorted(missing)} (needs path, emotion, speaker, "
                         "corpus)")
    rows = [row for row in rows if str(row["emotion"]).strip()]
    if not rows:
        raise ValueError(f"{path}: no rows with an emotion")
    audio = [str(Path(row["path"]) if Path(row["path"]).is_absolute() else path.parent / row["path"]) for row in rows]
    ds = datasets.Dataset.from_dict({
        "audio": audio,
        "emotion": [label_id(row["emotion"]) for row in rows],
        "speaker": [f"{row['corpus']}/{row['speaker']}" for row in rows],
        "corpus": [str(row["corpus"]) for row in rows],
        "gender": [str(row.get("gender") or "unknown") for row in rows],
    })
    return _decoded(ds, sampling_rate)


def load_corpora(sources: dict[str, str | None], sampling_rate: int = 16000,
                 hub_columns: dict | None = None) -> datasets.Dataset:
    """Several corpora, name -> source, as one dataset. One corpus keeps its own fields; several keep the common
    columns."""
    loaded = [load_corpus(name, source, sampling_rate, hub_columns) for name, source in sources.items()]
    if len(loaded) == 1:
        return loaded[0]
    return datasets.concatenate_datasets([ds.select_columns(COMMON_COLUMNS) for ds in loaded])
