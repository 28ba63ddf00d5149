"""The Hugging Face model card (README.md with YAML front matter) of a trained checkpoint.

Every figure in the card comes from the files the training run wrote: `metrics.json` (one model, written by
`train/train.py`) and `summary.json` (mean and spread over folds or seeds, written by `python -m train` when it runs
several). Nothing is filled in when they are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCardData

LICENSE = "cc-by-nc-sa-4.0"
TAGS = ["audio", "audio-classification", "speech-emotion-recognition", "emotion-recognition", "ravdess", "cnn",
        "custom_code"]
METRICS = (  # key in the metrics files, model-index metric type, its arguments, how the card names it
    ("unweighted_accuracy", "recall", {"average": "macro"}, "Unweighted accuracy (UA, macro-averaged recall)"),
    ("accuracy", "accuracy", None, "Accuracy (WA)"),
    ("macro_f1", "f1", {"average": "macro"}, "Macro F1"),
)
RAVDESS_CITATION = (
    "Livingstone SR, Russo FA (2018). The Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS): "
    "A dynamic, multimodal set of facial and vocal expressions in North American English. "
    "PLoS ONE 13(5): e0196391. https://doi.org/10.1371/journal.pone.0196391"
)
RAVDESS_BIBTEX = """@article{livingstone2018ravdess,
  title   = {The Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS): A dynamic,
             multimodal set of facial and vocal expressions in North American English},
  author  = {Livingstone, Steven R. and Russo, Frank A.},
  journal = {PLoS ONE},
  volume  = {13},
  number  = {5},
  pages   = {e0196391},
  year    = {2018},
  doi     = {10.1371/journal.pone.0196391}
}"""
ENCODERS = {"cnn2d": "2-D CNN", "cnn1d": "1-D CNN"}
AUGMENTATIONS = ("noise", "pitch", "stretch", "shift", "degrade")


def read_json(path: Path | str | None) -> dict | None:
    """The parsed JSON file at `path`, or None when there is no path or no file."""
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def _actors(names) -> str:
    return ", ".join(str(a) for a in names)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _mean_std(entry: dict) -> str:
    return f"{_pct(entry['mean'])} ± {_pct(entry['std'])}"


def kept_weights(metrics: dict) -> str:
    """Which weights a run without early stopping saved, in words."""
    # A record written before the setting existed lacks it: those runs kept the last epoch.
    epochs = metrics.get("recipe", {}).get("average_last_epochs") or 0
    return (f"the weights of the last {epochs} epochs are averaged (stochastic weight averaging)" if epochs else
            "the last epoch is kept")


def checkpoint_protocol(metrics: dict) -> tuple[str | None, str | None, str]:
    """(model-index config, split, one-paragraph statement) for the evaluation in `metrics.json`; config and split
    are None for a checkpoint trained on every actor, which has nothing of its own to report.

    The protocol is read from the actors of each split, so the statement holds whatever the run was called."""
    split = metrics["evaluated_on"]
    # "speakers" (corpus/id) in runs of several corpora; "actors" (RAVDESS numbers) in older runs.
    actors = {name: set(group) for name, group in (metrics.get("speakers") or metrics.get("actors", {})).items()}
    clips = metrics.get("clips", {})
    train, validation, test = actors.get("train", set()), actors.get("validation", set()), actors.get("test", set())
    # Only a run with patience stopped early on its validation actors; the others keep the last epoch (or an
    # average of the last ones), so their validation actors only draw the learning curve.
    chose_epoch = bool(metrics.get("recipe", {}).get("patience", 0))
    role = "chose the best epoch" if chose_epoch else f"only drew the learning curve: {kept_weights(metrics)}"
    trained = (f"Trained on {clips.get('train', '?')} clips of {len(train)} actors; the validation actors "
               f"({_actors(sorted(validation))}) {role}." if validation else
               f"Trained on {clips.get('train', '?')} clips of {len(train)} actors.")
    if split is None:
        return None, None, (
            f"This checkpoint was trained on all {clips.get('train', '?')} clips of its {len(train)} actors, with "
            "no one held out, so it has no figures of its own.")
    if split == "test" and test and not test & (train | validation):
        return "speaker-independent", "test", (
            f"Tested on {clips.get('test', '?')} clips of actors {_actors(sorted(test))}, none of whom is in the "
            "training or validation data (speaker-independent). " + trained)
    if split == "test":
        return "speaker-dependent", "test", (
            f"Tested on a random split of {clips.get('test', '?')} clips whose {len(test & train)} actors are also "
            "in the training data. This is speaker-DEPENDENT: the figures are optimistic. " + trained)
    return "validation", split, (
        f"This model has no held-out test split. The figures are on the {split} split "
        f"({clips.get(split, '?')} clips, actors {_actors(sorted(actors.get(split, ())))}). " + (
            "Those actors chose the best epoch (early stopping), so the figures are optimistic." if chose_epoch else
            "Those actors were not trained on, but they are few voices: a noisy estimate, not a test result.")
        + " " + trained)


def protocol_label(summary: dict) -> str:
    """The protocol of a `summary.json` in a few words, for a table cell."""
    runs, protocol = len(summary.get("runs", {})), summary["protocol"]
    if protocol == "emobox":
        return f"emobox, {runs} folds, unseen actors"
    if protocol == "random":
        return f"random 80/20, {runs} seeds, speaker-DEPENDENT"
    return f"{protocol}, {runs} runs"


def summary_protocol(summary: dict) -> str:
    """One-paragraph statement of the cross-validation in `summary.json`."""
    runs = list(summary.get("runs", {}))
    spread = f"mean ± standard deviation over {len(runs)} runs ({', '.join(runs)})"
    protocol = summary["protocol"]
    if protocol == "emobox":
        return (f"Speaker-independent cross-validation on the EmoBox folds of RAVDESS: each fold tests on 4 actors "
                f"absent from its training data; {spread}.")
    if protocol == "random":
        return (f"Speaker-DEPENDENT random 80/20 clip splits ({spread}): the same actors appear in training and "
                "test, so the figures are optimistic.")
    if protocol == "full":
        return f"Training on all actors but two validation actors, {spread}; the figures are on those actors."
    return f"Protocol `{protocol}`: {spread}."


def eval_results(metrics: dict | None, summary: dict | None) -> list[EvalResult]:
    """model-index entries: this checkpoint's evaluation, then the cross-validation means."""
    results = []
    config, split, _ = checkpoint_protocol(metrics) if metrics is not None else (None, None, "")
    if split is not None:
        for key, metric_type, args, name in METRICS:
            if key in metrics:
                results.append(EvalResult(
                    task_type="audio-classification", task_name="Speech emotion recognition",
                    dataset_type="ravdess", dataset_name="RAVDESS", dataset_config=config, dataset_split=split,
                    metric_type=metric_type, metric_value=metrics[key], metric_args=args, metric_name=name))
    if summary is not None:
        runs = len(summary.get("runs", {}))
        for key, metric_type, args, name in METRICS:
            if key in summary:
                results.append(EvalResult(
                    task_type="audio-classification", task_name="Speech emotion recognition",
                    dataset_type="ravdess", dataset_name="RAVDESS",
                    dataset_config=f"{summary['protocol']}-cross-validation",
                    dataset_split="validation" if summary["protocol"] == "full" else "test",
                    metric_type=metric_type, metric_value=summary[key]["mean"], metric_args=args,
                    metric_name=f"{name}, mean of {runs} runs"))
    return results


def _results_section(metrics: dict | None, summary: dict | None, images: dict[str, str],
                     comparisons: list[tuple[str, dict]]) -> list[str]:
    if metrics is None and summary is None:
        return ["## Evaluation", "",
                "No evaluation results were uploaded with this checkpoint, so this card reports none.", ""]
    lines = ["## Evaluation", "", "UA (unweighted accuracy) is the mean of the per-class recalls, the headline; "
             "WA is plain accuracy.", ""]
    if summary is not None:
        lines += ["### Cross-validation of the training recipe", "", summary_protocol(summary), "",
                  "| model | protocol | UA | WA | macro-F1 |", "| --- | --- | --- | --- | --- |"]
        for name, entry in [("this recipe", summary), *comparisons]:
            ua = _mean_std(entry["unweighted_accuracy"])
            lines.append(f"| {name} | {protocol_label(entry)} | {f'**{ua}**' if entry is summary else ua} "
                         f"| {_pct(entry['accuracy']['mean'])} | {_pct(entry['macro_f1']['mean'])} |")
        lines += ["", "UA per run: " + ", ".join(f"{name} {_pct(m['unweighted_accuracy'])}"
                                                 for name, m in summary.get("runs", {}).items()) + ".", ""]
        if "cross_validation" in images:
            lines += [f"![Confusion matrix summed over the runs]({images['cross_validation']})", ""]
    if metrics is not None:
        _, split, statement = checkpoint_protocol(metrics)
        if split is None:
            if summary is not None:
                statement += (" The cross-validation above trains the same recipe without 4 of the actors at a "
                              "time: it estimates how this model does on voices it has never heard.")
            return lines + ["### This checkpoint", "", statement, ""]
        lines += ["### This checkpoint", "", statement, "",
                  "| UA | WA | macro-F1 |", "| --- | --- | --- |",
                  f"| {_pct(metrics['unweighted_accuracy'])} | {_pct(metrics['accuracy'])} "
                  f"| {_pct(metrics['macro_f1'])} |", ""]
        if metrics.get("per_class"):
            lines += ["| emotion | precision | recall | F1 | clips |", "| --- | --- | --- | --- | --- |"]
            lines += [f"| {label} | {_pct(m['precision'])} | {_pct(m['recall'])} | {_pct(m['f1'])} "
                      f"| {m['support']} |" for label, m in metrics["per_class"].items()]
            lines.append("")
        if "checkpoint" in images:
            lines += [f"![Confusion matrix on the {split} split]({images['checkpoint']})", ""]
    return lines


def _training_section(metrics: dict | None, config: dict) -> list[str]:
    recipe = (metrics or {}).get("recipe")
    if not recipe:
        return []
    augment = recipe.get("augment")
    if not isinstance(augment, list):
        augment = [name for name in AUGMENTATIONS if recipe.get(name)]
    augment = [name.replace("degrade", "degraded speech") for name in augment if name != "spec-augment"]
    settings = [f"{name.replace('_', ' ')} {recipe[key]}" for key, name in
                (("learning_rate", "learning_rate"), ("batch_size", "batch_size"), ("weight_decay", "weight_decay"))
                if recipe.get(key) is not None]
    epochs = (f"at most {recipe.get('epochs')} epochs, early stopping on validation UA (patience "
              f"{recipe['patience']})" if recipe.get("patience") else
              f"{recipe.get('epochs')} epochs on a cosine schedule; {kept_weights(metrics)}")
    lines = ["## Training", "",
             f"- transformers `Trainer`, {', '.join(settings)}; {epochs}",
             f"- Waveform augmentation (each with probability {recipe.get('augment_probability')}): "
             + (", ".join(augment) if augment else "none")]
    if config.get("spec_augment"):
        masks = config.get("num_masks", 2)
        lines.append(f"- SpecAugment on the features: {masks} frequency mask{'s' * (masks != 1)} of up to "
                     f"{config.get('freq_mask_param')} bands and {masks} time mask{'s' * (masks != 1)} of up to "
                     f"{config.get('time_mask_param')} frames")
    if recipe.get("model"):
        lines.append(f"- Model settings changed from the defaults: `{json.dumps(recipe['model'])}`")
    extras = [f"Seed {recipe.get('seed')}"]
    if "train_seconds" in metrics:
        extras.append(f"{metrics['train_seconds']} s of training")
    if metrics.get("commit"):
        extras.append(f"code at commit `{metrics['commit']}`")
    return lines + ["- " + "; ".join(extras), ""]


def render_model_card(repo_id: str, config: dict, metrics: dict | None = None, summary: dict | None = None,
                      images: dict[str, str] | None = None, comparisons: list[tuple[str, dict]] | None = None,
                      sections: str = "") -> str:
    """The README.md of a model repository.

    Args:
        repo_id: the Hub id the card is for ("user/name"), used in the usage examples.
        config: the checkpoint's config.json, parsed (labels, rate, window, architecture).
        metrics: the run's metrics.json, parsed, or None.
        summary: a cross-validation summary.json, parsed, or None.
        images: repository paths of figures to embed: "checkpoint" (this model's confusion matrix)
            and "cross_validation" (summed over the runs of `summary`).
        comparisons: (name, summary.json) rows to add under `summary`'s in the cross-validation table.
        sections: markdown inserted before the limitations (robustness, speed, ...).
    """
    images = images or {}
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    parameters = (metrics or summary or {}).get("parameters")
    data = ModelCardData(
        language="en", license=LICENSE, library_name="transformers", pipeline_tag="audio-classification",
        tags=[*TAGS, "mfcc" if config.get("features") == "mfcc" else "log-mel"], datasets=["ravdess"],
        metrics=["accuracy", "recall", "f1"],
        model_name=repo_id.split("/")[-1], eval_results=eval_results(metrics, summary) or None,
    )
    features = f"{config['n_mfcc']} MFCCs" if config.get("features") == "mfcc" else f"{config['n_mels']} log-mel bands"
    if config.get("deltas"):
        features += " with deltas"
    size = f" with {parameters:,} parameters" if parameters else ""
    encoder = ENCODERS.get(config.get("encoder"), f"{config.get('encoder')} CNN")
    lines = [
        "---", data.to_yaml(), "---", "",
        f"# {repo_id.split('/')[-1]}: speech emotion recognition", "",
        f"A small CNN{size} that recognizes the emotion in a short English utterance, trained on RAVDESS. "
        f"It takes a mono {config.get('sampling_rate')} Hz waveform and scores {len(labels)} emotions: "
        f"{', '.join(labels)}.", "",
        f"Inside the model: {features} (computed in the model, normalized with training-set statistics), a "
        f"{encoder} with channels {config.get('channels')}, {config.get('pooling')} pooling over time and a "
        f"linear classifier. It reads a {config.get('window_seconds')} s window; score long recordings segment by "
        "segment.", "",
        "## How to use", "",
        "The model's code is in this repository (`pip install torch torchaudio transformers`, and FFmpeg to decode "
        "files):", "",
        "```python", "from transformers import pipeline", "",
        f'classifier = pipeline("audio-classification", model="{repo_id}", trust_remote_code=True)',
        f'classifier("speech.wav", top_k={len(labels)})', "```", "",
        f"The project's `ser` package adds decoding, a speech detector (no answer for silence, tones or noise) and timelines: "
        f"`ser.EmotionRecognizer(\"{repo_id}\")`.", "",
        *_results_section(metrics, summary, images, comparisons or []),
        *([sections] if sections else []),
        "## Limitations", "",
        "- Trained on acted speech only: North-American English actors saying two fixed sentences in a studio. "
        "Expect lower accuracy on spontaneous speech, other languages, other sentences and noisy recordings.",
        f"- It always answers with one of its {len(labels)} classes. A score is not a confidence that a person "
        "feels that emotion.",
        "- Expressed emotion is not felt emotion. Do not use it to make or support decisions about people, or to "
        "monitor people without their informed consent.", "",
        "## Training data and licence", "",
        "The speech part of RAVDESS: 24 actors (12 female, 12 male), 1440 clips (Livingstone & Russo 2018, "
        "PLoS ONE 13(5): e0196391; https://zenodo.org/records/1188976).", "",
        "RAVDESS is licensed under Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International "
        "(CC BY-NC-SA 4.0, https://creativecommons.org/licenses/by-nc-sa/4.0/). As a work derived from it, these "
        "weights are shared under the same terms: attribution, non-commercial use only, and the same license for "
        "derivatives.", "",
        *_training_section(metrics, config),
        "## Citation", "", "If you use this model, please cite the dataset:", "",
        "```bibtex", RAVDESS_BIBTEX, "```", "",
    ]
    return "\n".join(lines)


def model_card_from_run(repo_id: str, model_dir: Path | str, run_dir: Path | str | None = None,
                        summary_path: Path | str | None = None, images: dict[str, str] | None = None,
                        comparisons: list[tuple[str, dict]] | None = None, sections: str = "") -> str:
    """`render_model_card` from files on disk: the checkpoint's config.json, and `metrics.json` and
    `summary.json` in `run_dir` (a `summary_path` given explicitly wins over the one in `run_dir`)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    metrics = read_json(Path(run_dir) / "metrics.json") if run_dir else None
    if summary_path is None and run_dir is not None:
        summary_path = Path(run_dir) / "summary.json"
    summary = read_json(summary_path)
    return render_model_card(repo_id, config, metrics, summary, images, comparisons, sections)
