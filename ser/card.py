"""The Hugging Face model card (README.md with YAML front matter) of a trained checkpoint.

Every figure in the card comes from the files the training run wrote: `metrics.json` (one model,
written by `train/train.py`) and `summary.json` (mean and spread over folds or seeds, written by
`python -m train` when it runs several). Nothing is filled in when they are missing.
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


def read_json(path: Path | str | None) -> dict | None:
    """The parsed JSON file at `path`, or None when there is no path or no file."""
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def _actors(names) -> str:
    return ", ".join(str(a) for a in names)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def kept_weights(metrics: dict) -> str:
    """Which weights a run without early stopping saved, in words."""
    # A record written before the setting existed lacks it: those runs kept the last epoch.
    epochs = metrics.get("recipe", {}).get("average_last_epochs") or 0
    return (f"the weights of the last {epochs} epochs are averaged, BatchNorm statistics refitted (stochastic weight "
            "averaging)" if epochs else "the last epoch is kept")


def checkpoint_protocol(metrics: dict) -> tuple[str | None, str | None, str]:
    """(model-index config, split, one-paragraph statement) for the evaluation in `metrics.json`; config and split
    are None for a checkpoint trained on every actor, which has nothing of its own to report.

    The protocol is read from the actors of each split, so the statement holds whatever the run was called."""
    split = metrics["evaluated_on"]
    actors = {name: set(group) for name, group in metrics.get("actors", {}).items()}
    clips = metrics.get("clips", {})
    train, validation, test = actors.get("train", set()), actors.get("validation", set()), actors.get("test", set())
    # with patience 0 the last epoch (or an average of the last ones) is kept, so validation actors only draw the
    # learning curve
    chose_epoch = bool(metrics.get("recipe", {}).get("patience", 1))
    role = "chose the best epoch" if chose_epoch else f"only monitored training ({kept_weights(metrics)})"
    trained = (f"Trained on {clips.get('train', '?')} clips of {len(train)} actors; the validation split "
               f"({clips.get('validation', '?')} clips, actors {_actors(sorted(validation))}) {role}."
               if validation else
               f"Trained on {clips.get('train', '?')} clips of {len(train)} actors, none held out for validation.")
    if split is None:
        return None, None, (
            f"This checkpoint was trained on all {clips.get('train', '?')} clips of its {len(train)} actors, with "
            "no one held out, so it has no figures of its own.")
    if split == "test" and test and not test & (train | validation):
        return "speaker-independent", "test", (
            f"Evaluated on a held-out test split of {clips.get('test', '?')} clips from actors "
            f"{_actors(sorted(test))}, none of whom is in the training or validation data (speaker-independent). "
            + trained)
    if split == "test":
        shared = test & train
        return "speaker-dependent", "test", (
            f"Evaluated on a random test split of {clips.get('test', '?')} clips whose {len(shared)} actors also "
            "appear in the training data. This is a speaker-DEPENDENT split: the figures are optimistic and not "
            "comparable with speaker-independent results. " + trained)
    return "validation", split, (
        f"This model has no held-out test split: it was trained on {clips.get('train', '?')} clips of "
        f"{len(train)} actors, and the figures are on the {split} split ({clips.get(split, '?')} clips, actors "
        f"{_actors(sorted(actors.get(split, ())))}). " + (
            "Those actors were not trained on but chose the best epoch (early stopping), so the figures are "
            "optimistic estimates, not a test result." if chose_epoch else
            f"Those actors were not trained on and chose nothing ({kept_weights(metrics)}), but they are only "
            f"{len(actors.get(split, ()))} voices: a noisy estimate, not a test result."))


def summary_protocol(summary: dict) -> str:
    """One-paragraph statement of the cross-validation in `summary.json`."""
    runs = list(summary.get("runs", {}))
    spread = f"mean ± standard deviation over {len(runs)} runs ({', '.join(runs)})"
    protocol = summary["protocol"]
    if protocol == "emobox":
        return (f"Speaker-independent cross-validation on the EmoBox folds of RAVDESS: each fold tests on 4 actors "
                f"whose voices are in none of its training data; {spread}. This estimates how the "
                "training recipe does on voices it has never heard.")
    if protocol == "random":
        return (f"Speaker-DEPENDENT random 80/20 clip splits ({spread}): the same actors appear in training and "
                "test, so the figures are optimistic and only comparable with other speaker-dependent results.")
    if protocol == "full":
        return (f"Training on all actors but two validation actors, {spread}; the figures are on the validation "
                "actors, which chose the best epoch (optimistic).")
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


def _results_section(metrics: dict | None, summary: dict | None, images: dict[str, str]) -> list[str]:
    if metrics is None and summary is None:
        return ["## Evaluation", "",
                "No evaluation results were uploaded with this checkpoint, so this card reports none.", ""]
    lines = ["## Evaluation", "",
             "UA (unweighted accuracy) is the mean of the per-class recalls, the usual headline figure for "
             "emotion recognition; WA is plain accuracy.", ""]
    if summary is not None:
        ua, wa, f1 = (summary[k] for k in ("unweighted_accuracy", "accuracy", "macro_f1"))
        lines += ["### Cross-validation of the training recipe", "", summary_protocol(summary), "",
                  "| run | UA | WA | macro-F1 |", "| --- | --- | --- | --- |"]
        for name, m in summary.get("runs", {}).items():
            lines.append(f"| {name} | {_pct(m['unweighted_accuracy'])} | {_pct(m['accuracy'])} "
                         f"| {_pct(m['macro_f1'])} |")
        lines += [f"| **mean ± std** | **{_pct(ua['mean'])} ± {_pct(ua['std'])}** | {_pct(wa['mean'])} ± "
                  f"{_pct(wa['std'])} | {_pct(f1['mean'])} ± {_pct(f1['std'])} |", ""]
        if "cross_validation" in images:
            lines += [f"![Confusion matrix summed over the runs]({images['cross_validation']})", ""]
    if metrics is not None:
        _, split, statement = checkpoint_protocol(metrics)
        if split is None:
            if summary is not None:
                statement += (" The cross-validation above trains the same recipe without 4 of the actors at a "
                              "time and tests on those 4: it estimates how this model does on voices it has never "
                              "heard.")
            return lines + ["### This checkpoint", "", statement, ""]
        lines += ["### This checkpoint", "", statement, "",
                  "| UA | WA | macro-F1 |", "| --- | --- | --- |",
                  f"| {_pct(metrics['unweighted_accuracy'])} | {_pct(metrics['accuracy'])} "
                  f"| {_pct(metrics['macro_f1'])} |", ""]
        if metrics.get("per_class"):
            lines += [f"Per class, on the {split} split:", "",
                      "| emotion | precision | recall | F1 | clips |", "| --- | --- | --- | --- | --- |"]
            for label, m in metrics["per_class"].items():
                lines.append(f"| {label} | {_pct(m['precision'])} | {_pct(m['recall'])} | {_pct(m['f1'])} "
                             f"| {m['support']} |")
            lines.append("")
        if "checkpoint" in images:
            lines += [f"![Confusion matrix on the {split} split]({images['checkpoint']})", ""]
    return lines


def _training_section(metrics: dict | None, config: dict) -> list[str]:
    recipe = (metrics or {}).get("recipe")
    if not recipe:
        return []
    augment = [name for name in ("noise", "pitch", "stretch", "shift") if recipe.get(name)]
    if recipe.get("degrade"):
        augment.append("degraded speech (coloured noise, babble, telephone band, clipping)")
    lines = ["## Training", "",
             f"- transformers `Trainer`: learning rate {recipe.get('learning_rate')}, "
             f"weight decay {recipe.get('weight_decay')}, batch size {recipe.get('batch_size')}, "
             f"label smoothing {recipe.get('label_smoothing')}, class-weighted loss: {recipe.get('class_weights')}",
             (f"- Epochs: at most {recipe.get('epochs')}, early stopping on validation UA with patience "
              f"{recipe.get('patience')}" + (f" (ran {metrics['epochs_run']})" if "epochs_run" in metrics else "")
              if recipe.get("patience") else
              f"- Epochs: {recipe.get('epochs')} on a cosine learning-rate schedule "
              f"(warm-up {recipe.get('warmup_ratio', 0):.0%}); {kept_weights(metrics)}"),
             f"- Waveform augmentation (each with probability {recipe.get('augment_probability')}): "
             + (", ".join(augment) if augment else "none"),
             f"- Seed: {recipe.get('seed')}"]
    if config.get("spec_augment"):
        masks = config.get("num_masks", 2)
        lines.insert(-1, f"- SpecAugment on the features: {masks} frequency mask{'s' * (masks != 1)} of up to "
                         f"{config.get('freq_mask_param')} bands and {masks} time mask{'s' * (masks != 1)} of up to "
                         f"{config.get('time_mask_param')} frames")
    if recipe.get("model"):
        lines.append(f"- Model settings changed from the defaults: `{json.dumps(recipe['model'])}`")
    if "train_seconds" in metrics:
        lines.append(f"- Training time: {metrics['train_seconds']} s")
    return lines + [""]


def render_model_card(repo_id: str, config: dict, metrics: dict | None = None, summary: dict | None = None,
                      images: dict[str, str] | None = None) -> str:
    """The README.md of a model repository.

    Args:
        repo_id: the Hub id the card is for ("user/name"), used in the usage examples.
        config: the checkpoint's config.json, parsed (labels, rate, window, architecture).
        metrics: the run's metrics.json, parsed, or None.
        summary: a cross-validation summary.json, parsed, or None.
        images: repository paths of figures to embed: "checkpoint" (this model's confusion matrix)
            and "cross_validation" (summed over the runs of `summary`).
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
        features += " with deltas and delta-deltas"
    size = f" with {parameters:,} parameters" if parameters else ""
    window = config.get("window_seconds")
    lines = [
        "---", data.to_yaml(), "---", "",
        f"# {repo_id.split('/')[-1]}: speech emotion recognition", "",
        f"A small convolutional network{size} that recognizes the emotion in a short English utterance, trained "
        f"on RAVDESS. It takes a mono waveform at {config.get('sampling_rate')} Hz and returns one score for each "
        f"of {len(labels)} emotions: {', '.join(labels)}.", "",
        f"Inside the model: {features} (computed by torchaudio inside the model, normalized with statistics "
        f"of the training set), a {config.get('encoder')} CNN with channels {config.get('channels')}, "
        f"{config.get('pooling')} pooling over time and a linear classifier. It looks at a {window} s window"
        + (f" starting at the first frame within {config['trim_silence_db']} dB of the loudest"
           if config.get("trim_silence_db") is not None else "")
        + "; longer audio is cropped, so score long recordings segment by segment.", "",
        "## How to use", "",
        "The model's code is in this repository, so `trust_remote_code=True` is all it needs besides "
        "`pip install torch torchaudio transformers` (and FFmpeg or torchcodec to decode files):", "",
        "```python", "from transformers import pipeline", "",
        f'classifier = pipeline("audio-classification", model="{repo_id}", trust_remote_code=True)',
        f'classifier("speech.wav", top_k={len(labels)})  # [{{"label": ..., "score": ...}}, ...]', "```", "",
        "Or with the model directly, from a mono float waveform:", "",
        "```python", "import torch", "from transformers import AutoModelForAudioClassification", "",
        f'model = AutoModelForAudioClassification.from_pretrained("{repo_id}", trust_remote_code=True)',
        f"probabilities = model(torch.as_tensor(waveform)[None]).logits.softmax(-1)  "
        f"# waveform: mono, {config.get('sampling_rate')} Hz",
        "```", "",
        "With this project's `ser` package installed, `ser.EmotionRecognizer(\"" + repo_id + "\")` loads it too and "
        "adds file decoding, silence checks and a timeline for long recordings.", "",
        *_results_section(metrics, summary, images),
        "## Intended use and limitations", "",
        "- Intended for research, teaching and demos of speech emotion recognition.",
        "- It was trained only on acted speech: professional North-American English actors saying two fixed "
        "sentences (\"Kids are talking by the door\", \"Dogs are sitting by the door\") in a studio. Expect "
        "lower accuracy on spontaneous speech, other languages and accents, other sentences, children's or "
        "older voices, and noisy or telephone-quality recordings.",
        f"- It always answers with one of the same {len(labels)} classes ({', '.join(labels)}), even for audio "
        "that shows none of them; a score is not a confidence that a person feels that emotion.",
        "- Expressed emotion is not felt emotion. Do not use this model to make or support decisions about "
        "people (hiring, education, health, policing, insurance, credit, access to services) or to monitor "
        "people without their informed consent.", "",
        "## Training data", "",
        "The speech part of RAVDESS (24 actors, 12 female and 12 male; 1440 clips): " + RAVDESS_CITATION, "",
        "RAVDESS is licensed under Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International "
        "(CC BY-NC-SA 4.0, https://creativecommons.org/licenses/by-nc-sa/4.0/); it is available at "
        "https://zenodo.org/records/1188976. As a work derived from it, these weights are shared under the same "
        "terms: attribution, non-commercial use only, and the same license for derivatives.", "",
        *_training_section(metrics, config),
        "## Citation", "", "If you use this model, please cite the dataset:", "",
        "```bibtex", RAVDESS_BIBTEX, "```", "",
    ]
    return "\n".join(lines)


def model_card_from_run(repo_id: str, model_dir: Path | str, run_dir: Path | str | None = None,
                        summary_path: Path | str | None = None, images: dict[str, str] | None = None) -> str:
    """`render_model_card` from files on disk: the checkpoint's config.json, and `metrics.json` and
    `summary.json` in `run_dir` (a `summary_path` given explicitly wins over the one in `run_dir`)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    metrics = read_json(Path(run_dir) / "metrics.json") if run_dir else None
    if summary_path is None and run_dir is not None:
        summary_path = Path(run_dir) / "summary.json"
    summary = read_json(summary_path)
    return render_model_card(repo_id, config, metrics, summary, images)
