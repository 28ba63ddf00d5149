"""The Hugging Face model card (README.md with YAML front matter) of a trained checkpoint.

Every figure in the card comes from the files the training runs wrote: `metrics.json` (one model, written by
`train/train.py`), `summary.json` (mean and spread over folds or seeds, written by `python -m train` when it runs
several) and, for a cross-corpus evaluation, the `metrics.json` of runs that held a whole corpus out. Nothing is
filled in when they are missing. What the card says about the data (languages, licences, citations) follows the
corpora named in the checkpoint's `training_data`.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import EvalResult, ModelCardData

METRICS = (  # key in the metrics files, model-index metric type, its arguments, how the card names it
    ("unweighted_accuracy", "recall", {"average": "macro"}, "Unweighted accuracy (UA, macro-averaged recall)"),
    ("accuracy", "accuracy", None, "Accuracy (WA)"),
    ("macro_f1", "f1", {"average": "macro"}, "Macro F1"),
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
TESS_BIBTEX = """@misc{dupuis2010tess,
  title     = {Toronto emotional speech set ({TESS})},
  author    = {Dupuis, Kate and Pichora-Fuller, M. Kathleen},
  publisher = {University of Toronto, Psychology Department; Borealis},
  year      = {2010},
  doi       = {10.5683/SP2/E8H2MF}
}"""
EMODB_BIBTEX = """@inproceedings{burkhardt2005emodb,
  title     = {A database of {German} emotional speech},
  author    = {Burkhardt, Felix and Paeschke, Astrid and Rolfes, Miriam and Sendlmeier, Walter F. and
               Weiss, Benjamin},
  booktitle = {Interspeech 2005},
  pages     = {1517--1520},
  year      = {2005}
}"""


@dataclass(frozen=True)
class Corpus:
    """What the card says about a corpus a checkpoint was trained on."""

    name: str
    language: str | None  # ISO 639-1 code
    license: str | None  # the Hub's licence id; None where the Hub has none for it
    licence: str  # in words
    speech: str  # who says what, for the limitations
    citation: str
    bibtex: str = ""


CORPORA = {
    "ravdess": Corpus(
        "RAVDESS", "en", "cc-by-nc-sa-4.0", "CC BY-NC-SA 4.0",
        "North-American English actors saying two sentences",
        "Livingstone & Russo (2018), PLoS ONE 13(5): e0196391, https://doi.org/10.1371/journal.pone.0196391",
        RAVDESS_BIBTEX),
    "tess": Corpus(
        "TESS", "en", "cc-by-nc-nd-4.0", "CC BY-NC-ND 4.0",
        "Toronto actresses saying \"Say the word …\"",
        "Dupuis & Pichora-Fuller (2010), Toronto emotional speech set, University of Toronto, "
        "https://doi.org/10.5683/SP2/E8H2MF", TESS_BIBTEX),
    "emodb": Corpus(
        "EmoDB", "de", None, "free for research use, no formal licence",
        "German actors saying ten sentences",
        "Burkhardt et al. (2005), A database of German emotional speech, Interspeech 2005, 1517–1520", EMODB_BIBTEX),
}
# RAVDESS's: the licence of a RAVDESS-only checkpoint and of the Space's example clips.
LICENSE = CORPORA["ravdess"].license
LANGUAGES = {"en": "English", "de": "German"}
TAGS = ["audio", "audio-classification", "speech-emotion-recognition", "emotion-recognition"]
ENCODERS = {"cnn2d": "2-D CNN", "cnn1d": "1-D CNN"}
AUGMENTATIONS = ("noise", "pitch", "stretch", "shift", "degrade")


def read_json(path: Path | str | None) -> dict | None:
    """The parsed JSON file at `path`, or None when there is no path or no file."""
    if path is None or not Path(path).is_file():
        return None
    return json.loads(Path(path).read_text())


def corpus(name: str) -> Corpus:
    """The card's facts about the corpus `name`; one it does not know is named and pointed to its own terms."""
    return CORPORA.get(name) or Corpus(name, None, None, "see its own licence", f"the speakers of {name}", name)


def _ordered(names) -> list[str]:
    """Corpus names in the card's order: the known corpora first, as in CORPORA, then the others."""
    known = list(CORPORA)
    return sorted(names, key=lambda name: (known.index(name) if name in known else len(known), name))


def training_corpora(config: dict, metrics: dict | None = None) -> dict[str, dict]:
    """corpus -> {"clips", "speakers"} of the training data: the checkpoint's record, else the run's. A checkpoint
    with neither predates multi-corpus training, so it was trained on RAVDESS."""
    data = config.get("training_data") or (metrics or {}).get("corpora", {}).get("train") or {"ravdess": {}}
    return {name: data[name] for name in _ordered(data)}


def learned_from(config: dict) -> str:
    """Who the checkpoint heard, in a phrase: each training corpus with what its speakers say and how many."""
    phrases = []
    for name, data in training_corpora(config).items():
        voices = f", {data['speakers']} voices" if data.get("speakers") else ""
        phrases.append(f"{corpus(name).name} ({corpus(name).speech}{voices})")
    return _and(phrases)


def card_license(names) -> tuple[str, str | None]:
    """(licence id, licence name) of weights trained on the corpora `names`: a single corpus's own licence where the
    Hub knows it; otherwise `other`, named after the corpora, since the weights fall under the terms of all of them."""
    licences = {corpus(name).license for name in names}
    if len(licences) == 1 and None not in licences:
        return licences.pop(), None
    return "other", "-".join(names) + "-non-commercial-research"


def _and(items: list[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else items[0]


def _actors(names) -> str:
    return ", ".join(str(a) for a in names)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _mean_std(entry: dict) -> str:
    return f"{_pct(entry['mean'])} ± {_pct(entry['std'])}"


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def calibrated(config: dict) -> bool:
    """Whether the checkpoint carries a fitted temperature or "not sure" threshold."""
    return config.get("calibration_temperature", 1.0) != 1.0 or config.get("confidence_threshold", 0.0) > 0


def fitted_calibration(metrics: dict) -> bool:
    """Whether the run fitted a temperature and a "not sure" threshold on its validation speakers."""
    return bool((metrics.get("temperature") or {}).get("fitted_on"))


def kept_weights(metrics: dict) -> str:
    """Which weights a run without early stopping saved, in words."""
    # A record written before the setting existed lacks it: those runs kept the last epoch.
    epochs = metrics.get("recipe", {}).get("average_last_epochs") or 0
    return (f"the weights of the last {epochs} epochs are averaged (stochastic weight averaging)" if epochs else
            "the last epoch is kept")


def validation_role(metrics: dict) -> str:
    """What the validation speakers of a run did, in words."""
    # Only a run with patience stopped early on its validation speakers; the others keep the last epoch (or an
    # average of the last ones).
    roles = ["chose the best epoch"] if metrics.get("recipe", {}).get("patience", 0) else []
    if fitted_calibration(metrics):
        roles.append("fitted the calibration temperature and the \"not sure\" threshold")
    return " and ".join(roles) or f"only drew the learning curve: {kept_weights(metrics)}"


def checkpoint_protocol(metrics: dict) -> tuple[str | None, str | None, str]:
    """(model-index config, split, one-paragraph statement) for the evaluation in `metrics.json`; config and split
    are None for a checkpoint trained on every actor, which has nothing of its own to report.

    The protocol is read from the actors of each split, so the statement holds whatever the run was called."""
    split = metrics["evaluated_on"]
    # "speakers" (corpus/id) in runs of several corpora; "actors" (RAVDESS numbers) in older runs.
    noun = "speakers" if "speakers" in metrics else "actors"
    actors = {name: set(group) for name, group in (metrics.get("speakers") or metrics.get("actors", {})).items()}
    clips = metrics.get("clips", {})
    train, validation, test = actors.get("train", set()), actors.get("validation", set()), actors.get("test", set())
    chose_epoch = bool(metrics.get("recipe", {}).get("patience", 0))
    trained = (f"Trained on {clips.get('train', '?')} clips of {len(train)} {noun}; the validation {noun} "
               f"({_actors(sorted(validation))}) {validation_role(metrics)}." if validation else
               f"Trained on {clips.get('train', '?')} clips of {len(train)} {noun}.")
    if split is None:
        return None, None, (
            f"This checkpoint was trained on all {clips.get('train', '?')} clips of its {len(train)} {noun}, with "
            "no one held out, so it has no figures of its own.")
    if split == "test" and test and not test & (train | validation):
        return "speaker-independent", "test", (
            f"Tested on {clips.get('test', '?')} clips of {noun} {_actors(sorted(test))}, none of whom is in the "
            "training or validation data (speaker-independent). " + trained)
    if split == "test":
        return "speaker-dependent", "test", (
            f"Tested on a random split of {clips.get('test', '?')} clips whose {len(test & train)} {noun} are also "
            "in the training data. This is speaker-DEPENDENT: the figures are optimistic. " + trained)
    return "validation", split, (
        f"This model has no held-out test split. The figures are on the {split} split "
        f"({clips.get(split, '?')} clips, {noun} {_actors(sorted(actors.get(split, ())))}). " + (
            f"Those {noun} chose the best epoch (early stopping), so the figures are optimistic." if chose_epoch else
            f"Those {noun} were not trained on, but they are few voices: a noisy estimate, not a test result.")
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


def _scored_corpora(metrics: dict, split: str) -> tuple[str, str]:
    """(dataset type, name) of the clips a run scored: its corpora on that split; RAVDESS in older records."""
    names = _ordered(metrics.get("corpora", {}).get(split) or ["ravdess"])
    return "+".join(names), " + ".join(corpus(name).name for name in names)


def eval_results(metrics: dict | None, summary: dict | None) -> list[EvalResult]:
    """model-index entries: this checkpoint's evaluation, then the cross-validation means."""
    results = []
    config, split, _ = checkpoint_protocol(metrics) if metrics is not None else (None, None, "")
    if split is not None:
        dataset_type, dataset_name = _scored_corpora(metrics, split)
        for key, metric_type, args, name in METRICS:
            if key in metrics:
                results.append(EvalResult(
                    task_type="audio-classification", task_name="Speech emotion recognition",
                    dataset_type=dataset_type, dataset_name=dataset_name, dataset_config=config, dataset_split=split,
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


@dataclass
class RecipeResults:
    """A training recipe's scores on voices it never heard."""

    six_fold: dict  # summary.json over RAVDESS's 6 EmoBox folds
    held_out: dict[str, dict]  # corpus -> metrics.json of a run trained on the other corpora and tested on it
    folds: list[dict] = field(default_factory=list)  # the folds' metrics.json, for where their thresholds sit
    # corpus -> metrics.json of the same recipe held out under other seeds: how far the held-out figures move by chance
    other_seeds: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class Evaluation:
    """A results section made by the caller, in place of the one made from the run's metrics and summary."""

    lines: list[str]
    results: list[EvalResult]


def _ua_result(dataset: str, config: str, value: float, name: str) -> EvalResult:
    return EvalResult(task_type="audio-classification", dataset_type=dataset, dataset_name=corpus(dataset).name,
                      dataset_config=config, dataset_split="test", metric_type="recall",
                      metric_value=round(value, 4), metric_name=name)


def _held_out_cell(metrics: dict | None) -> str:
    if metrics is None:
        return "–"
    restricted = metrics["restricted"]
    return (f"{_pct(restricted['unweighted_accuracy'])} ({restricted['top_class']} "
            f"{restricted['top_class_share']:.0%})")


def _answered(thresholds: list[dict]) -> str:
    """Where the models' own "not sure" thresholds sit on their test clips: mean share answered / right."""
    coverage = _mean([t.get("coverage") for t in thresholds])
    right = _mean([t.get("accuracy_answered") for t in thresholds])
    return f"{coverage:.0%} / {right:.0%}" if coverage is not None and right is not None else "–"


def _calibration_row(name: str, calibration: dict | None, thresholds: list[dict]) -> str:
    if not calibration:
        return f"| {name} | – | – | – |"
    before, after = calibration["before"], calibration["after"]
    return (f"| {name} | {before['ece']:.3f} → {after['ece']:.3f} | {before['nll']:.2f} → {after['nll']:.2f} "
            f"| {_answered(thresholds)} |")


def _seed_spread(values: list[float]) -> str:
    """Mean ± standard deviation (n - 1) of fractions, in percent."""
    mean = _pct(statistics.mean(values))
    return f"{mean} ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else mean


def _trade_off(ours: RecipeResults, baseline: RecipeResults, baseline_name: str) -> list[str]:
    """One sentence on what the recipe gains or loses against the baseline, on RAVDESS's actors and held out."""
    six_fold = 100 * (ours.six_fold["unweighted_accuracy"]["mean"]
                      - baseline.six_fold["unweighted_accuracy"]["mean"])
    shared = [name for name in ours.held_out if baseline.held_out.get(name)]
    if not shared:
        return []
    seeds = {name: [ours.held_out[name], *ours.other_seeds.get(name, [])] for name in shared}
    held_out = 100 * _mean([_mean([m["restricted"]["unweighted_accuracy"] for m in seeds[name]])
                            - baseline.held_out[name]["restricted"]["unweighted_accuracy"] for name in shared])
    spread = "mean"
    if any(len(runs) > 1 for runs in seeds.values()):  # how far chance alone moves them: the spread over seeds
        spread = f"mean ± std over {max(len(runs) for runs in seeds.values())} seeds: " + ", ".join(
            f"{corpus(name).name} {_seed_spread([m['restricted']['unweighted_accuracy'] for m in seeds[name]])}"
            for name in shared)
    return [f"Difference from the {baseline_name} column: {six_fold:+.1f} points of UA on RAVDESS's unseen actors, "
            f"{held_out:+.1f} points on the held-out corpora ({spread}).", ""]


def cross_corpus_evaluation(ours: RecipeResults, baseline: RecipeResults, release: dict | None = None,
                            config: dict | None = None, baseline_name: str = "RAVDESS-only baseline") -> Evaluation:
    """The evaluation of a recipe trained on several corpora: UA on RAVDESS's folds and restricted UA on each
    corpus held out, beside a baseline recipe's, then the calibration of its models and of the checkpoint.

    Args:
        ours, baseline: the two recipes' results (the baseline's `folds` are not used).
        release: the checkpoint's own metrics.json, scored on its validation speakers, or None.
        config: the checkpoint's config.json, for its temperature and "not sure" threshold.
        baseline_name: the baseline's column heading.
    """
    config, release = config or {}, release or {}
    runs = len(ours.six_fold.get("runs", {}))
    results = [_ua_result("ravdess", "emobox-cross-validation", ours.six_fold["unweighted_accuracy"]["mean"],
                          f"UA, mean of {runs} folds of unseen actors")]
    rows = [f"| RAVDESS: {runs} folds of unseen actors | {_mean_std(ours.six_fold['unweighted_accuracy'])} "
            f"| {_mean_std(baseline.six_fold['unweighted_accuracy'])} |"]
    for name, metrics in ours.held_out.items():
        restricted = metrics["restricted"]
        results.append(_ua_result(name, "held-out-corpus", restricted["unweighted_accuracy"],
                                  "Restricted UA, corpus never heard"))
        rows.append(f"| {corpus(name).name} held out | {_held_out_cell(metrics)} "
                    f"| {_held_out_cell(baseline.held_out.get(name))} |")
    validation = (release.get("speakers") or release.get("actors") or {}).get("validation", [])
    trained = _and([corpus(name).name for name in training_corpora(config, release)])
    lines = [
        "## Evaluation", "",
        "UA (unweighted accuracy): the mean of the per-class recalls. Each figure is of a model trained without the "
        "voices it is scored on" + (
            f"; this checkpoint (all of {trained} but {len(validation)} validation speakers) has no test figures of "
            "its own." if validation else "."), "",
        f"| scored on | this recipe | {baseline_name} |", "| --- | --- | --- |", *rows, "",
        "RAVDESS: UA, mean ± std over EmoBox's actor folds (the other corpora train in every fold). Held out: the "
        "model never heard the corpus; restricted UA (argmax over the corpus's own classes), and its top class "
        "with its share.", ""]
    lines += _trade_off(ours, baseline, baseline_name)
    calibration_rows = []
    if ours.six_fold.get("calibration"):
        thresholds = [m["calibration"]["at_threshold"] for m in ours.folds
                      if "at_threshold" in m.get("calibration", {})]
        calibration_rows.append(_calibration_row("RAVDESS folds (mean)", ours.six_fold["calibration"], thresholds))
    for name, metrics in ours.held_out.items():
        calibration = metrics.get("calibration")
        thresholds = [calibration["at_threshold"]] if calibration and "at_threshold" in calibration else []
        calibration_rows.append(_calibration_row(f"{corpus(name).name} held out", calibration, thresholds))
    if calibration_rows:
        lines += ["### Calibration", "",
                  "ECE (15 bins) and NLL, all 8 classes, before → after each model's temperature (fitted on its "
                  "validation speakers); answered / right: the share of clips at or above its \"not sure\" "
                  "threshold, and the accuracy on them.", "",
                  "| scored on | ECE | NLL | answered / right |", "| --- | --- | --- | --- |", *calibration_rows, ""]
        after = ours.six_fold.get("calibration", {}).get("after", {})
        if "pooled_ece" in after:
            clips = sum(m["clips"]["test"] for m in ours.folds)
            lines += [f"Over all {clips} fold clips: ECE {after['pooled_ece']:.3f} after (a perfectly calibrated "
                      f"model: {after['pooled_ece_sampling_floor']:.3f}; {after['ece_sampling_floor']:.3f} on one "
                      "fold's clips).", ""]
    if calibrated(config):
        at = release.get("calibration", {}).get("at_threshold")
        where = (f": there it answers {at['coverage']:.0%} of the clips, {at['accuracy_answered']:.0%} of them "
                 "right" if at and at.get("accuracy_answered") is not None else "")
        speakers = f"its {len(validation)} validation speakers" if validation else "its validation speakers"
        lines += [f"This checkpoint divides its logits by T = {config.get('calibration_temperature', 1.0):.2f} "
                  f"and says \"not sure\" below a top probability of {config.get('confidence_threshold', 0.0):.2f}, "
                  f"both fitted on {speakers}{where}.", ""]
    return Evaluation(lines, results)


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
    lines = ["## Training", "", f"- transformers `Trainer`, {', '.join(settings)}; {epochs}"]
    # Records from before these settings existed lack them: those runs drew every clip alike, all of them an epoch.
    balance, epoch_clips = recipe.get("balance", "none"), recipe.get("epoch_clips")
    drawn = {"corpus": "corpora", "speaker": "speakers"}.get(balance)
    drawing = ", ".join(filter(None, [f"{drawn} drawn equally often" if drawn else "",
                                      f"{epoch_clips} clips an epoch (with replacement)" if epoch_clips else ""]))
    if drawing:
        lines.append(f"- {drawing[0].upper()}{drawing[1:]}")
    validation = (metrics.get("speakers") or {}).get("validation")
    if validation and fitted_calibration(metrics):
        lines.append(f"- {len(validation)} validation speakers ({_actors(validation)}) held back to fit the "
                     "calibration temperature and the \"not sure\" threshold")
    lines.append(f"- Waveform augmentation (each with probability {recipe.get('augment_probability')}): "
                 + (", ".join(augment) if augment else "none"))
    if config.get("spec_augment"):
        masks = config.get("num_masks", 2)
        lines.append(f"- SpecAugment on the features: {masks} frequency mask{'s' * (masks != 1)} of up to "
                     f"{config.get('freq_mask_param')} bands and {masks} time mask{'s' * (masks != 1)} of up to "
                     f"{config.get('time_mask_param')} frames")
    if recipe.get("model"):
        lines.append(f"- Model settings given to training: `{json.dumps(recipe['model'])}`")
    extras = [f"Seed {recipe.get('seed')}"]
    if "train_seconds" in metrics:
        extras.append(f"{metrics['train_seconds']} s of training")
    if metrics.get("commit"):
        commit = metrics["commit"]
        extras.append(f"code at commit `{commit[:7]}{'-dirty' if commit.endswith('-dirty') else ''}`")
    return lines + ["- " + "; ".join(extras), ""]


def _data_section(data: dict[str, dict]) -> list[str]:
    corpora = [corpus(name) for name in data]
    lines = ["## Training data and licence", "", *(f"- {c.name} ({c.licence}): {c.citation}" for c in corpora), ""]
    if len(corpora) == 1:
        return lines + [f"As a work derived from {corpora[0].name}, these weights are shared under the same terms "
                        f"({corpora[0].licence}).", ""]
    every = {2: "both", 3: "all three"}.get(len(corpora), f"all {len(corpora)}")
    return lines + [f"As a work derived from {_and([c.name for c in corpora])}, these weights are for non-commercial "
                    f"research use only, under the terms of {every}: credit each corpus as above.", ""]


def _citation_section(data: dict[str, dict]) -> list[str]:
    entries = [corpus(name).bibtex for name in data if corpus(name).bibtex]
    if not entries:
        return []
    return ["## Citation", "", f"If you use this model, please cite the dataset{'s' * (len(entries) > 1)}:", "",
            "```bibtex", "\n\n".join(entries), "```", ""]


def render_model_card(repo_id: str, config: dict, metrics: dict | None = None, summary: dict | None = None,
                      images: dict[str, str] | None = None, comparisons: list[tuple[str, dict]] | None = None,
                      sections: str = "", evaluation: Evaluation | None = None, bibtex: bool = True) -> str:
    """The README.md of a model repository.

    Args:
        repo_id: the Hub id the card is for ("user/name"), used in the usage examples.
        config: the checkpoint's config.json, parsed (labels, rate, window, architecture, training data).
        metrics: the run's metrics.json, parsed, or None.
        summary: a cross-validation summary.json, parsed, or None.
        images: repository paths of figures to embed: "checkpoint" (this model's confusion matrix)
            and "cross_validation" (summed over the runs of `summary`).
        comparisons: (name, summary.json) rows to add under `summary`'s in the cross-validation table.
        sections: markdown inserted before the limitations (robustness, speed, ...).
        evaluation: a results section (and model-index) to use instead of the one made from `metrics` and
            `summary`, e.g. `cross_corpus_evaluation`'s; `metrics` still gives the training recipe.
        bibtex: end with the training corpora's BibTeX entries (they take about 1 KB).
    """
    images = images or {}
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    parameters = (metrics or summary or {}).get("parameters")
    data = training_corpora(config, metrics)
    license_id, license_name = card_license(data)
    languages = list(dict.fromkeys(corpus(name).language for name in data if corpus(name).language)) or ["en"]
    results = evaluation.results if evaluation is not None else eval_results(metrics, summary)
    mfcc = config.get("features") == "mfcc"
    card_data = ModelCardData(
        language=languages if len(languages) > 1 else languages[0], license=license_id, license_name=license_name,
        library_name="transformers", pipeline_tag="audio-classification",
        tags=[*TAGS, *data, "cnn", "custom_code", "mfcc" if mfcc else "log-mel"], datasets=list(data),
        metrics=[m for m in ("accuracy", "recall", "f1") if m in {r.metric_type for r in results}] or None,
        model_name=repo_id.split("/")[-1], eval_results=results or None,
    )
    features = (f"{config['n_mfcc']} MFCCs ({config.get('n_mels')} mel bands)" if mfcc else
                f"{config['n_mels']} log-mel bands")
    if config.get("deltas"):
        features += " + Δ + ΔΔ"
    size = f" with {parameters:,} parameters" if parameters else ""
    encoder = ENCODERS.get(config.get("encoder"), f"{config.get('encoder')} CNN")
    trained = _and([corpus(name).name + (f" ({counts['clips']:,} clips, {counts['speakers']} speakers)"
                                         if counts.get("clips") and counts.get("speakers") else "")
                    for name, counts in data.items()])
    threshold = config.get("confidence_threshold", 0.0)
    not_sure = ", or says \"not sure\"" if threshold > 0 else ""
    speakers = sum(counts.get("speakers", 0) for counts in data.values())
    lines = [
        "---", card_data.to_yaml(), "---", "",
        f"# {repo_id.split('/')[-1]}: speech emotion recognition", "",
        f"A small CNN{size} that recognizes the emotion in a short "
        f"{' or '.join(LANGUAGES.get(code, code) for code in languages)} utterance, trained on {trained}. "
        f"It takes a mono {config.get('sampling_rate')} Hz waveform and scores {len(labels)} emotions: "
        f"{', '.join(labels)}{not_sure}.", "",
        f"Inside the model: {features}, computed and normalized in the model; a {encoder} with channels "
        f"{config.get('channels')}; {config.get('pooling')} pooling over time; a linear classifier. It reads a "
        f"{config.get('window_seconds')} s window: score long recordings segment by segment.", "",
        "## How to use", "",
        "The model's code is in this repository (`pip install torch torchaudio transformers`, and FFmpeg to decode "
        "files):", "",
        "```python", "from transformers import pipeline", "",
        f'classifier = pipeline("audio-classification", model="{repo_id}", trust_remote_code=True)',
        f'classifier("speech.wav", top_k={len(labels)})', "```", "",
        f"The project's `ser` package adds decoding, a speech detector (no answer for silence, tones or noise) and "
        f"timelines: `ser.EmotionRecognizer(\"{repo_id}\")`.", "",
        *(evaluation.lines if evaluation is not None else
          _results_section(metrics, summary, images, comparisons or [])),
        *([sections] if sections else []),
        "## Limitations", "",
        f"- Acted studio speech{f' of only {speakers} speakers' if speakers else ''}: "
        f"{'; '.join(corpus(name).speech for name in data)}. Expect lower accuracy on spontaneous speech, other "
        "voices, languages and sentences, and noise.",
        (f"- Below its threshold it says \"not sure\"; otherwise it answers with one of its {len(labels)} classes."
         if threshold > 0 else f"- It always answers with one of its {len(labels)} classes.")
        + " A score is not a confidence that a person feels that emotion.",
        "- Expressed emotion is not felt emotion. Do not use it to make or support decisions about people, or to "
        "monitor people without their informed consent.", "",
        *_data_section(data),
        *_training_section(metrics, config),
        *(_citation_section(data) if bibtex else []),
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
