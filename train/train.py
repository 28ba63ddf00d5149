"""Train and evaluate one model on one split: build -> fit -> evaluate -> write.

`train_fold` is the whole path, read top to bottom; `train.cli.main` runs it for each fold or seed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import evaluate
import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

import ser
from ser import SERConfig, SERForAudioClassification
from ser.modeling_ser import remove_offset

from . import calibration, data, plots

ROOT = Path(__file__).resolve().parent.parent
METRICS_MODULE = str(Path(__file__).parent / "emotion_metrics")
AUGMENTATIONS = ("noise", "pitch", "stretch", "shift", "degrade")


@dataclass
class Recipe:
    """Training settings that are not part of the model (those live in `SERConfig`).

    Args:
        epochs: passes over the training split, under a cosine learning-rate schedule with warmup.
        batch_size, learning_rate, weight_decay, warmup_ratio: AdamW and its schedule.
        augment: waveform augmentations of the training split (`train.data.build_augmenter`): any of
            noise, pitch, stretch, shift and degrade (coloured noise, babble, telephone band, clipping).
        augment_probability: the chance that each augmentation is applied to a clip.
        balance: how training clips are drawn when the split mixes corpora: "corpus" draws each corpus as often,
            "none" every clip alike, "speaker" each speaker as often. Balancing keeps a corpus with many clips of few
            speakers (TESS: 2800 clips, 2 voices) from dominating; docs/experiments.md compares the three.
        epoch_clips: clips drawn an epoch (with replacement, by the balance); None: as many as the training split
            has. It keeps the cost of an epoch fixed when corpora are added.
        average_last_epochs: keep the mean of the weights at the end of each of the last N epochs, BatchNorm
            statistics recomputed (stochastic weight averaging); 0 keeps the last epoch. None: a quarter of
            `epochs`. Late epochs swing by several points on unseen speakers, and their average costs nothing.
        class_weights: weight the loss by inverse class frequency.
        seed: seeds the weights, the batches and the augmentation.
        workers: processes that augment the next batches while the model trains; each count draws its own
            (repeatable) augmentations.
        model: `SERConfig` overrides, e.g. {"features": "mfcc", "deltas": True}.
    """

    epochs: int = 60
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    warmup_ratio: float = 0.05
    augment: tuple[str, ...] = AUGMENTATIONS
    augment_probability: float = 0.3
    balance: str = "corpus"
    epoch_clips: int | None = None
    average_last_epochs: int | None = None
    class_weights: bool = True
    seed: int = 0
    workers: int = 2
    model: dict = field(default_factory=dict)

    def __post_init__(self):
        self.augment = tuple(name for name in AUGMENTATIONS if name in self.augment)
        if self.average_last_epochs is None:
            self.average_last_epochs = self.epochs // 4
        if self.balance not in data.BALANCING:
            raise ValueError(f"balance must be one of {data.BALANCING}, got {self.balance!r}")
        if not 0 <= self.average_last_epochs <= self.epochs:
            raise ValueError(f"cannot average the last {self.average_last_epochs} of {self.epochs} epochs")

    def record(self) -> dict:
        """The recipe as JSON data, as metrics.json keeps it."""
        return json.loads(json.dumps(self.__dict__))


def available_cores() -> int:
    """Cores this process may run on (fewer than the machine's under taskset or a container's CPU set)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> dict:
    """The CPU and versions a run trained on: CPU families round floats differently, so a run repeats bit for
    bit only on the kind of CPU that made it."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": available_cores(), "torch": torch.__version__, "platform": platform.platform()}


def code_commit() -> str | None:
    """The git commit of the checkout, with "-dirty" when tracked files differ from it; None outside git."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


# The commit of the code this process runs, read when it starts: a long run must not record a commit made while it
# trained. An old result is re-run by checking out the commit its metrics.json names.
RUNNING_COMMIT = code_commit()


def collate(rows):
    """Zero-pad a list of {"input_values", "emotion"} rows into a batch with its attention mask."""
    length = max(len(r["input_values"]) for r in rows)
    batch = torch.zeros(len(rows), length)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        batch[i, : len(r["input_values"])] = torch.tensor(r["input_values"])
        mask[i, : len(r["input_values"])] = 1
    labels = torch.as_tensor(np.array([r["emotion"] for r in rows]))
    return {"input_values": batch, "attention_mask": mask, "labels": labels}


@torch.no_grad()
def fit_normalization(model: SERForAudioClassification, train: "datasets.Dataset", batch_size: int = 64) -> None:
    """Per-coefficient mean and std of the front end's features over the (un-augmented) training split."""
    total, total_sq, count = 0.0, 0.0, 0
    rows = data.as_arrays(train)
    for start in range(0, len(train), batch_size):
        batch = collate([{"input_values": x, "emotion": 0} for x in rows[start: start + batch_size]["input_values"]])
        x = model.front_end.raw_features(batch["input_values"], batch["attention_mask"]).double()
        total = total + x.sum(dim=(0, 3))
        total_sq = total_sq + x.pow(2).sum(dim=(0, 3))
        count += x.shape[0] * x.shape[3]
    mean = total / count
    model.front_end.set_normalization(mean.float(), (total_sq / count - mean.pow(2)).clamp_min(0).sqrt().float())


class WeightAverage(TrainerCallback):
    """Running mean of the model's weights at the end of each of the last `epochs` of `total_epochs` epochs."""

    def __init__(self, model: torch.nn.Module, epochs: int, total_epochs: int):
        self.average = torch.optim.swa_utils.AveragedModel(model)
        self.first_epoch = total_epochs - epochs + 1

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if round(state.epoch) >= self.first_epoch:
            self.average.update_parameters(model)

    @torch.no_grad()
    def apply(self, model: torch.nn.Module, train_loader) -> None:
        """Put the averaged weights in `model`, then recompute its BatchNorm statistics with one pass over
        `train_loader`: statistics gathered under the separate epochs' weights do not fit their average."""
        for target, source in zip(model.parameters(), self.average.module.parameters()):
            target.copy_(source)
        device = next(model.parameters()).device
        # update_bn passes the bare waveforms; removing each clip's offset first keeps padding out of it.
        batches = (remove_offset(b["input_values"], b["attention_mask"]).to(device) for b in train_loader)
        torch.optim.swa_utils.update_bn(batches, model)
        model.eval()


class TrainAccuracy(TrainerCallback):
    """Accuracy on the (augmented) training batches of each epoch, logged beside the loss."""

    def __init__(self):
        self.correct = self.seen = 0

    def update(self, logits, labels):
        self.correct += int((logits.argmax(-1) == labels).sum())
        self.seen += len(labels)

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.seen:
            state.log_history.append({"epoch": round(state.epoch), "train_accuracy": self.correct / self.seen})
        self.correct = self.seen = 0


class BalancedTrainer(Trainer):
    """A Trainer that draws `epoch_clips` training clips an epoch, with replacement, by `sampling_weights` (uniform
    when None), when either is given; otherwise each clip once an epoch, as the plain Trainer does."""

    def __init__(self, *args, sampling_weights: np.ndarray | None = None, epoch_clips: int | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.sampling_weights = sampling_weights
        self.epoch_clips = epoch_clips

    def _get_train_sampler(self, train_dataset=None):
        if self.sampling_weights is None and self.epoch_clips is None:
            return super()._get_train_sampler(train_dataset)
        size = len(train_dataset if train_dataset is not None else self.train_dataset)
        weights = np.ones(size) if self.sampling_weights is None else self.sampling_weights
        generator = torch.Generator().manual_seed(self.args.seed)
        return torch.utils.data.WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double),
                                                      self.epoch_clips or size, generator=generator)


def corpus_counts(split) -> dict[str, dict[str, int]]:
    """Clips and speakers of each corpus in a split."""
    corpora, speakers = np.asarray(split["corpus"]), np.asarray(split["speaker"])
    return {str(c): {"clips": int((corpora == c).sum()), "speakers": len(set(speakers[corpora == c].tolist()))}
            for c in sorted(set(corpora.tolist()))}


def build(splits, recipe: Recipe, output_dir: Path, id2label: dict[int, str]):
    """The model (normalization fitted on the training split) and the Trainer that fits it; the weight average,
    if the recipe keeps one."""
    set_seed(recipe.seed)
    config = SERConfig(id2label=id2label, training_data=corpus_counts(splits["train"]), **recipe.model)
    model = SERForAudioClassification(config)
    fit_normalization(model, splits["train"])
    # Channels-last conv weights spare oneDNN re-laying out every activation: faster steps on a CPU.
    model.to(memory_format=torch.channels_last)

    counts = np.bincount(splits["train"]["emotion"], minlength=config.num_labels)
    weights = torch.tensor(len(counts) * counts.sum() / np.maximum(counts, 1) / len(counts) ** 2, dtype=torch.float32)
    train_accuracy = TrainAccuracy()

    def loss_fn(outputs, labels, num_items_in_batch=None):
        if torch.is_grad_enabled():  # a training step; evaluation scores its loss under no_grad
            train_accuracy.update(outputs.logits.detach(), labels)
        return torch.nn.functional.cross_entropy(
            outputs.logits, labels, weight=weights.to(outputs.logits.device) if recipe.class_weights else None)

    metric = evaluate.load(METRICS_MODULE)

    def compute_metrics(prediction):
        result = metric.compute(predictions=prediction.predictions.argmax(-1), references=prediction.label_ids,
                                num_labels=config.num_labels)
        return {k: result[k] for k in ("accuracy", "unweighted_accuracy", "macro_f1")}

    weight_average = (WeightAverage(model, recipe.average_last_epochs, recipe.epochs)
                      if recipe.average_last_epochs else None)
    validation = splits.get("validation")
    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        lr_scheduler_type="cosine",
        warmup_steps=recipe.warmup_ratio,  # a float below 1 is a fraction of all steps
        eval_strategy="epoch" if validation is not None else "no",
        save_strategy="no",
        logging_strategy="epoch",
        remove_unused_columns=False,
        report_to=[],
        seed=recipe.seed,
        dataloader_num_workers=recipe.workers,
        dataloader_pin_memory=False,
        disable_tqdm=True,
    )
    augmenter = data.build_augmenter(*(name in recipe.augment for name in AUGMENTATIONS),
                                     probability=recipe.augment_probability)
    babble = recipe.augment_probability if "degrade" in recipe.augment else 0.0
    trainer = BalancedTrainer(
        model=model,
        sampling_weights=data.sampling_weights(splits["train"], recipe.balance),
        epoch_clips=recipe.epoch_clips,
        args=args,
        train_dataset=data.AugmentedSplit(splits["train"], augmenter, config.sampling_rate, babble=babble),
        eval_dataset=data.as_arrays(validation) if validation is not None else None,
        data_collator=collate,
        compute_loss_func=loss_fn,
        compute_metrics=compute_metrics,
        callbacks=[train_accuracy] + [weight_average] * bool(weight_average),
    )
    return model, trainer, weight_average


def fit(trainer: Trainer, weight_average: WeightAverage | None, recipe: Recipe) -> float:
    """Train; put the averaged weights in the model if the recipe keeps an average. Returns the seconds taken."""
    started = time.time()
    threads = torch.get_num_threads()
    # The augmentation workers keep their own cores busy; a main process that also spreads each step over every
    # core fights them for it.
    torch.set_num_threads(max(1, available_cores() - recipe.workers))
    try:
        trainer.train()
        if weight_average is not None:
            weight_average.apply(trainer.model, trainer.get_train_dataloader())
    finally:
        torch.set_num_threads(threads)
    return time.time() - started


def calibrate(trainer: Trainer, splits) -> dict:
    """Fit the temperature on the validation split (speakers that trained nothing), then choose the confidence
    threshold of "not sure" there, and put both in the model's config; without a validation split they stay 1 and
    0. Returns what was fitted, on what, and the validation clips' ECE at that temperature."""
    config = trainer.model.config
    config.calibration_temperature, config.confidence_threshold = 1.0, 0.0
    if "validation" not in splits:
        return {"temperature": 1.0, "confidence_threshold": 0.0, "fitted_on": None}
    prediction = trainer.predict(data.as_arrays(splits["validation"]))
    logits, references = prediction.predictions, prediction.label_ids.astype(np.int64)
    config.calibration_temperature = calibration.fit_temperature(logits, references)
    probabilities = calibration.softmax(logits / config.calibration_temperature)
    config.confidence_threshold = calibration.choose_threshold(probabilities, references)
    return {"temperature": config.calibration_temperature, "confidence_threshold": config.confidence_threshold,
            "fitted_on": "validation", "clips": len(splits["validation"]),
            "validation_ece": calibration.expected_calibration_error(probabilities, references)}


def evaluate_splits(trainer: Trainer, splits, labels: list[str]) -> tuple[str | None, dict, float | None]:
    """Score the saved weights on the test split (or, without one, on validation): (the split scored, its scores,
    the validation UA or None).

    The scores hold UA, WA, macro-F1, per-class figures, the confusion matrix and the share of clips given the
    most-predicted class. Where the scored clips lack some of the model's classes (another corpus), the same
    figures follow under "restricted": the argmax taken over the classes the clips have, the usual cross-corpus
    convention. "calibration" holds ECE, NLL and reliability bins before and after the model's temperature."""
    report_split = "test" if "test" in splits else "validation" if "validation" in splits else None
    if report_split is None:
        return None, {}, None
    prediction = trainer.predict(data.as_arrays(splits[report_split]))
    final_validation = None
    if "validation" in splits:
        final_validation = (prediction if report_split == "validation"
                            else trainer.predict(data.as_arrays(splits["validation"]))).metrics["test_unweighted_accuracy"]
    logits, references = prediction.predictions, prediction.label_ids.astype(np.int64)
    scores = score(logits, references, labels)
    temperature = trainer.model.config.calibration_temperature
    scores["calibration"] = {"temperature": temperature, "before": calibration.report(logits * temperature, references),
                             "after": calibration.report(logits, references),
                             "confidence_threshold": trainer.model.config.confidence_threshold,
                             "at_threshold": calibration.at_threshold(calibration.softmax(logits), references,
                                                                      trainer.model.config.confidence_threshold)}
    if len(set(references.tolist())) < len(labels):
        scores["restricted"] = restricted_score(logits, references, labels)
    return report_split, scores, final_validation


def restricted_score(logits: np.ndarray, references: np.ndarray, labels: list[str]) -> dict:
    """`score` with the argmax taken over the classes that `references` hold, and those classes' names."""
    present = sorted(set(references.tolist()))
    restricted = np.full_like(logits, -np.inf)
    restricted[:, present] = logits[:, present]
    return {**score(restricted, references, labels), "classes": [labels[i] for i in present]}


def score(logits: np.ndarray, references: np.ndarray, labels: list[str]) -> dict:
    """UA, WA, macro-F1, per-class figures, confusion matrix and the most-predicted class's share of the clips."""
    predictions = logits.argmax(-1)
    result = evaluate.load(METRICS_MODULE).compute(predictions=predictions, references=references,
                                                   num_labels=len(labels))
    result["support"] = [int(n) for n in result["support"]]  # counts, whatever dtype the metric returned
    per_class = {label: {"precision": result["precision"][i], "recall": result["recall"][i], "f1": result["f1"][i],
                         "support": result["support"][i]} for i, label in enumerate(labels)}
    counts = np.bincount(predictions, minlength=len(labels))
    return {**result, "per_class": per_class, "top_class": labels[int(counts.argmax())],
            "top_class_share": float(counts.max() / max(1, len(predictions)))}


def write(output_dir: Path, trainer: Trainer, metrics: dict) -> None:
    """The checkpoint (`model/`), metrics.json, the classification report and the plots (by the main process
    only, when `accelerate` runs several)."""
    if not trainer.is_world_process_zero():
        return
    model_dir = output_dir / "model"
    trainer.save_model(str(model_dir))
    ser.new_feature_extractor(trainer.model.config).save_pretrained(str(model_dir))
    (model_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle; the recipe is in metrics.json
    shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    split, labels = metrics["evaluated_on"], metrics["labels"]
    if split:
        (output_dir / "classification_report.txt").write_text(plots.classification_report(metrics, labels, split))
        plots.confusion_matrix(np.asarray(metrics["confusion_matrix"]), labels, output_dir / "confusion_matrix.png",
                               title=f"{split}: UA {metrics['unweighted_accuracy']:.1%}")
        plots.reliability_diagram(metrics["calibration"], output_dir / "reliability.png", title=split)
    plots.learning_curves(trainer.state.log_history, output_dir / "learning_curves.png")


def train_fold(splits, recipe: Recipe, output_dir: Path, id2label: dict[int, str], protocol: str = "") -> dict:
    """Train on splits["train"], report on splits["test"] (or on validation when there is no test split).

    A validation split is scored after every epoch, for the learning curves; it never chooses the weights.
    Without validation and test splits (a release trained on every speaker) nothing is scored, and the metrics
    hold the training record only."""
    output_dir.mkdir(parents=True, exist_ok=True)
    model, trainer, weight_average = build(splits, recipe, output_dir, id2label)
    seconds = fit(trainer, weight_average, recipe)
    fitted = calibrate(trainer, splits)
    labels = [id2label[i] for i in range(len(id2label))]
    report_split, scores, final_validation = evaluate_splits(trainer, splits, labels)
    history = trainer.state.log_history
    metrics = {
        "protocol": protocol,
        "evaluated_on": report_split,
        "speakers": {name: sorted(set(split["speaker"])) for name, split in splits.items()},
        "clips": {name: len(split) for name, split in splits.items()},
        "corpora": {name: corpus_counts(split) for name, split in splits.items()},
        "labels": labels,
        **scores,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(seconds, 1),
        "epochs_run": round(trainer.state.epoch),
        "final_validation_unweighted_accuracy": final_validation,
        "train_loss_per_epoch": [h["loss"] for h in history if "loss" in h],
        "train_accuracy_per_epoch": [h["train_accuracy"] for h in history if "train_accuracy" in h],
        "validation_unweighted_accuracy_per_epoch": [
            h["eval_unweighted_accuracy"] for h in history if "eval_unweighted_accuracy" in h],
        "temperature": fitted,
        "recipe": recipe.record(),
        "commit": RUNNING_COMMIT,
        "machine": machine(),
    }
    write(output_dir, trainer, metrics)
    return metrics
