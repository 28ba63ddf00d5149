"""Train and evaluate one model: split -> normalization stats -> Trainer -> metrics and plots.

Read top to bottom: `train_fold` is the whole path for one split; `main` runs one or all folds.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import evaluate
import numpy as np
import torch
from transformers import (EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments,
                          get_cosine_schedule_with_warmup, set_seed)
from transformers.modeling_outputs import SequenceClassifierOutput

import ser
from ser import SERConfig, SERForAudioClassification

from . import data, plots

METRICS_MODULE = str(Path(__file__).parent / "emotion_metrics")


@dataclass
class Recipe:
    """Training settings that are not part of the model (those live in `SERConfig`)."""

    epochs: int = 60
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    warmup_ratio: float = 0.05
    # 0 trains every epoch of a cosine schedule; N > 0 instead stops early on the validation actors
    # and keeps the best epoch (with 2 validation actors that choice is noisy).
    patience: int = 0
    label_smoothing: float = 0.0
    class_weights: bool = True
    noise: bool = True
    pitch: bool = True
    pitch_semitones: float = 2.0  # widest pitch shift, up or down (with `pitch`)
    stretch: bool = True
    shift: bool = True
    augment_probability: float = 0.3
    mixup: float = 0.0  # Beta(alpha, alpha) parameter of waveform mixup; 0 turns it off
    # Noise, babble, telephone band and clipping (train.data.build_augmenter) on top of the above, for robustness
    # to the conditions of bench.robustness. It needs the 60 epochs: at 40 the model was still learning.
    degrade: bool = True
    # With degrade: the share of training clips that get babble (None: augment_probability), and whether its
    # talkers are cut to their speech (a dense crowd, as in bench.robustness) or keep their silences.
    babble_probability: float | None = None
    babble_speech_only: bool = False
    # 0 keeps the last epoch's weights; N > 0 saves the mean of the weights at the end of each of the last N epochs
    # (stochastic weight averaging), BatchNorm statistics recomputed on the training split. Validation UA swings by
    # several points from one late epoch to the next; an average of those weights costs nothing at inference.
    # None (the default): a quarter of `epochs` (15 of 60, adopted on 2026-11-27 as `swa15`), or 0 with `patience`.
    average_last_epochs: int | None = None
    # 0: the cosine schedule falls to 0. f > 0: it stops falling at f x learning_rate (after the warmup, where it
    # would cross that value), so the late epochs keep moving; with weight averaging, the averaged epochs then
    # differ enough for their mean to be more than the last of them (Izmailov et al. 2018 average at a constant
    # learning rate). Until the cosine reaches the floor, a run is the same as without it.
    learning_rate_floor: float = 0.0
    # The seed that picked the split (validation actors, or the `random` clip split), when it is not `seed`: recorded
    # so that --resume does not keep a run made on another split.
    split_seed: int | None = None
    # 0 turns it off; w > 0 adds a speaker adversary (domain-adversarial training, Ganin & Lempitsky 2015, with the
    # training actors as domains): a small classifier learns to name the actor from the pooled embedding, and a
    # speaker term, its weight rising from 0 to w over training, trains the network to defeat it. What
    # tells voices apart is what a model trained on 16-22 actors overfits; the folds test on voices it never heard.
    speaker_adversary: float = 0.0
    # How the network is pushed against the adversary: "reversal" (gradient reversal; it diverged on the screen) or
    # "confusion" (towards a uniform guess over the actors, a bounded target); see `speaker_losses`.
    speaker_adversary_loss: str = "reversal"
    # Channels-last conv weights let oneDNN skip re-laying out every activation, so a training step runs about 1.5x
    # faster on a CPU. The arithmetic is the same up to float rounding, but dropout and SpecAugment masks are drawn in
    # memory order and max-pooling ties are broken in it, so a run differs from a contiguous one as another seed
    # would. On since the 2x log-mel default (2026-11-26), whose step it brings down to the earlier default's time;
    # the systems trained before then pin it off, and repeat bit for bit that way.
    channels_last: bool = True
    seed: int = 0
    # Processes that augment the next batches while the model trains. Augmentation takes most of a run's time, so
    # 2 is faster wherever there are 2 cores; each count gives its own (repeatable) random augmentations.
    workers: int = 2
    model: dict = field(default_factory=dict)  # SERConfig overrides, e.g. {"features": "logmel"}

    def __post_init__(self):
        if self.average_last_epochs is None:
            self.average_last_epochs = 0 if self.patience else self.epochs // 4


# What a run did before each of these settings existed, for reading a record that lacks one: today's default is not
# always what an older run did.
BEFORE_THE_SETTING = {"average_last_epochs": 0, "channels_last": False, "learning_rate_floor": 0.0}


def babble_probability(recipe: Recipe) -> float:
    if not recipe.degrade:
        return 0.0
    return recipe.augment_probability if recipe.babble_probability is None else recipe.babble_probability


def available_cores() -> int:
    """Cores this process may run on (fewer than the machine's under taskset or a container's CPU set)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> dict:
    """The CPU and versions a run trained on. CPU families round floats differently (AVX-512 against AVX2 kernels),
    and 60 epochs amplify that as another seed would: a run repeats bit for bit only on the kind of CPU that made it."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": available_cores(), "torch": torch.__version__, "platform": platform.platform()}


def collate(rows):
    """Zero-pad a list of {"input_values", "emotion"} rows into a batch. An emotion is a class id, or a
    vector of class probabilities (mixup); rows with a "speaker" (an index of the training actors) add "speakers"."""
    length = max(len(r["input_values"]) for r in rows)
    batch = torch.zeros(len(rows), length)
    for i, r in enumerate(rows):
        batch[i, : len(r["input_values"])] = torch.tensor(r["input_values"])
    batch = {"input_values": batch, "labels": torch.from_numpy(np.stack([np.asarray(r["emotion"]) for r in rows]))}
    if "speaker" in rows[0]:
        batch["speakers"] = torch.tensor([r["speaker"] for r in rows])
    return batch


@torch.no_grad()
def fit_normalization(model: SERForAudioClassification, train: "datasets.Dataset", batch_size: int = 64) -> None:
    """Per-coefficient mean and std of the front end's features over the (un-augmented) training split."""
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, len(train), batch_size):
        rows = data.as_arrays(train)[start: start + batch_size]
        batch = collate([{"input_values": x, "emotion": 0} for x in rows["input_values"]])["input_values"]
        x = model.front_end.raw_features(batch).double()
        total = total + x.sum(dim=(0, 3))
        total_sq = total_sq + x.pow(2).sum(dim=(0, 3))
        count += x.shape[0] * x.shape[3]
    mean = total / count
    model.front_end.set_normalization(mean.float(), (total_sq / count - mean.pow(2)).clamp_min(0).sqrt().float())


class WeightAverage(TrainerCallback):
    """Running mean of the model's weights at the end of each of the last `epochs` of `total_epochs` epochs."""

    def __init__(self, model: torch.nn.Module, epochs: int, total_epochs: int):
        if not 0 < epochs <= total_epochs:
            raise ValueError(f"cannot average the last {epochs} of {total_epochs} epochs")
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
        device = next(model.parameters()).device  # update_bn leaves the batches where the loader puts them
        torch.optim.swa_utils.update_bn((batch["input_values"].to(device) for batch in train_loader), model)
        model.eval()


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by -weight."""

    @staticmethod
    def forward(ctx, x, weight: float):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None


def speaker_losses(adversary: torch.nn.Module, embedding: torch.Tensor, speakers: torch.Tensor, weight: float,
                   kind: str = "reversal") -> torch.Tensor:
    """The speaker terms of the training loss, for `Recipe.speaker_adversary_loss` `kind`:

    - "reversal": the adversary's cross-entropy through a gradient reversal of `weight`: the adversary minimizes it,
      the network maximizes it. Unbounded for the network, which can win by pushing the logits without limit.
    - "confusion": the adversary's cross-entropy on the detached embedding (it learns to name the actor), plus
      `weight` times the cross-entropy between its prediction and the uniform distribution, through the network
      only (Tzeng et al. 2015's domain confusion): the network is pushed towards "any actor is as likely", a bounded
      target, and the adversary is not trained to be confused.
    """
    if kind == "reversal":
        return torch.nn.functional.cross_entropy(adversary(GradientReversal.apply(embedding, weight)), speakers)
    if kind != "confusion":
        raise ValueError(f"speaker_adversary_loss must be 'reversal' or 'confusion', got {kind!r}")
    learn = torch.nn.functional.cross_entropy(adversary(embedding.detach()), speakers)
    frozen = {name: value.detach() for name, value in adversary.named_parameters()}
    logits = torch.func.functional_call(adversary, frozen, (embedding,))
    return learn - weight * logits.log_softmax(-1).mean(-1).mean()


class SERTrainer(Trainer):
    """A Trainer whose cosine learning-rate schedule can stop falling at a floor (`Recipe.learning_rate_floor`).

    Args:
        learning_rate_floor: the fraction of the peak learning rate below which the schedule does not fall after
            its warmup; 0 keeps transformers' own cosine schedule.
    """

    def __init__(self, *args, learning_rate_floor: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= learning_rate_floor < 1.0:
            raise ValueError(f"learning_rate_floor must lie in [0, 1), got {learning_rate_floor}")
        self.learning_rate_floor = learning_rate_floor

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        if self.lr_scheduler is None and self.learning_rate_floor:
            optimizer = optimizer or self.optimizer
            warmup = self.args.get_warmup_steps(num_training_steps)
            cosine = get_cosine_schedule_with_warmup(optimizer, warmup, num_training_steps).lr_lambdas[0]
            floor = self.learning_rate_floor
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: cosine(step) if step < warmup else max(floor, cosine(step)))
            self._created_lr_scheduler = True
        return super().create_scheduler(num_training_steps, optimizer)


class SpeakerAdversarialTrainer(SERTrainer):
    """A Trainer whose training loss adds the speaker adversary of `Recipe.speaker_adversary` (`speaker_losses`).

    Args:
        adversary: maps the model's pooled embedding to one logit per training actor; trained by the same
            optimizer, never saved with the model.
        weight: the speaker term's final weight; it follows Ganin & Lempitsky's schedule 2 / (1 + exp(-10 p)) - 1
            of the training progress p, so the adversary learns before it pushes back.
        kind: "reversal" or "confusion" (see `speaker_losses`).
    """

    def __init__(self, *args, adversary: torch.nn.Module, weight: float, kind: str = "reversal", **kwargs):
        super().__init__(*args, **kwargs)
        self.adversary = adversary.to(self.args.device)
        self.weight = weight
        self.kind = kind

    def create_optimizer(self, *args, **kwargs):
        optimizer = super().create_optimizer(*args, **kwargs)
        adversary = list(self.adversary.parameters())
        if not any(p is adversary[0] for group in optimizer.param_groups for p in group["params"]):
            optimizer.add_param_group({"params": adversary, "weight_decay": self.args.weight_decay})
        return optimizer

    def speaker_weight(self) -> float:
        progress = self.state.global_step / max(1, self.state.max_steps)
        return self.weight * (2 / (1 + math.exp(-10 * progress)) - 1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        speakers = inputs.pop("speakers", None)
        if speakers is None:  # evaluation batches
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        embedding = model.embed(inputs["input_values"])
        outputs = SequenceClassifierOutput(logits=model.classifier(embedding))
        loss = (self.compute_loss_func(outputs, labels, num_items_in_batch)
                + speaker_losses(self.adversary, embedding, speakers, self.speaker_weight(), self.kind))
        return (loss, outputs) if return_outputs else loss


class TrainAccuracy(TrainerCallback):
    """Accuracy on the (augmented) training batches of each epoch, logged beside the loss."""

    def __init__(self):
        self.correct = self.seen = 0

    def update(self, logits, labels):
        if labels.ndim == 2:  # mixup: count the dominant class
            labels = labels.argmax(-1)
        self.correct += int((logits.argmax(-1) == labels).sum())
        self.seen += len(labels)

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.seen:
            state.log_history.append({"epoch": round(state.epoch), "train_accuracy": self.correct / self.seen})
        self.correct = self.seen = 0


def train_fold(splits, recipe: Recipe, output_dir: Path, id2label: dict[int, str], protocol: str = "") -> dict:
    """Train on splits["train"], follow (or, with `patience`, stop early on) splits["validation"], report on
    splits["test"] (or on validation when there is no test split, as under the `full` protocol).

    Without a validation split, nothing is evaluated during training; without a test split either, nothing is
    scored at all (a release trained on every actor) and the metrics hold the training record only."""
    validation = splits.get("validation")
    if validation is None and recipe.patience:
        raise ValueError("patience stops early on the validation actors: keep some (--validation-actors) or set 0")
    set_seed(recipe.seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    config = SERConfig(id2label=id2label, **recipe.model)
    model = SERForAudioClassification(config)
    fit_normalization(model, splits["train"])
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)

    counts = np.bincount(splits["train"]["emotion"], minlength=config.num_labels)
    weights = torch.tensor(len(counts) * counts.sum() / np.maximum(counts, 1) / len(counts) ** 2, dtype=torch.float32)
    train_accuracy = TrainAccuracy()

    def loss_fn(outputs, labels, num_items_in_batch=None):
        train_accuracy.update(outputs.logits.detach(), labels)
        return torch.nn.functional.cross_entropy(
            outputs.logits, labels, weight=weights.to(outputs.logits.device) if recipe.class_weights else None,
            label_smoothing=recipe.label_smoothing)

    metric = evaluate.load(METRICS_MODULE)

    def compute_metrics(prediction):
        result = metric.compute(predictions=prediction.predictions.argmax(-1), references=prediction.label_ids,
                                num_labels=config.num_labels)
        return {k: result[k] for k in ("accuracy", "unweighted_accuracy", "macro_f1")}

    if recipe.average_last_epochs and recipe.patience:
        raise ValueError("average_last_epochs and patience both choose the weights to keep: set one of them "
                         "(--average-last-epochs 0 with --patience)")
    if recipe.speaker_adversary and recipe.mixup:
        raise ValueError("speaker_adversary needs one actor per training clip, and mixup mixes two: set one of them")
    weight_average = (WeightAverage(model, recipe.average_last_epochs, recipe.epochs)
                      if recipe.average_last_epochs else None)
    augmenter = data.build_augmenter(recipe.noise, recipe.pitch, recipe.stretch, recipe.shift,
                                     recipe.augment_probability, recipe.degrade, recipe.pitch_semitones)
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
        save_strategy="epoch" if recipe.patience else "no",
        logging_strategy="epoch",
        load_best_model_at_end=bool(recipe.patience),
        metric_for_best_model="unweighted_accuracy",
        save_total_limit=1,
        remove_unused_columns=False,
        report_to=[],
        seed=recipe.seed,
        dataloader_num_workers=recipe.workers,
        dataloader_pin_memory=False,
        disable_tqdm=True,
    )
    adversary = {}
    if recipe.speaker_adversary:
        actors = len(set(splits["train"]["actor"]))
        embedding_size = model.classifier[-1].in_features
        adversary = dict(adversary=torch.nn.Sequential(torch.nn.Linear(embedding_size, 128), torch.nn.ReLU(),
                                                       torch.nn.Linear(128, actors)),
                         weight=recipe.speaker_adversary, kind=recipe.speaker_adversary_loss)
    trainer = (SpeakerAdversarialTrainer if adversary else SERTrainer)(
        model=model,
        args=args,
        train_dataset=data.AugmentedSplit(splits["train"], augmenter, config.sampling_rate, recipe.mixup,
                                          config.num_labels, babble=babble_probability(recipe),
                                          babble_speech_only=recipe.babble_speech_only,
                                          speakers=bool(adversary)),
        eval_dataset=data.as_arrays(validation) if validation is not None else None,
        data_collator=collate,
        compute_loss_func=loss_fn,
        compute_metrics=compute_metrics,
        callbacks=([EarlyStoppingCallback(recipe.patience)] * bool(recipe.patience) + [train_accuracy]
                   + [weight_average] * bool(weight_average)),
        learning_rate_floor=recipe.learning_rate_floor,
        **adversary,
    )
    started = time.time()
    threads = torch.get_num_threads()
    # The augmentation workers keep their own cores busy; a main process that also spreads each step over every
    # core fights them for it (4 epochs on 2 cores: 60 s with 2 threads, 42 s with 1).
    torch.set_num_threads(max(1, available_cores() - recipe.workers))
    try:
        trainer.train()
        if weight_average is not None:
            weight_average.apply(model, trainer.get_train_dataloader())
    finally:
        torch.set_num_threads(threads)
    seconds = time.time() - started

    model_dir = output_dir / "model"
    trainer.save_model(str(model_dir))
    ser.new_feature_extractor(config).save_pretrained(str(model_dir))
    (model_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle; the recipe is in metrics.json
    shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)

    report_split = "test" if "test" in splits else "validation" if validation is not None else None
    labels = [id2label[i] for i in range(config.num_labels)]
    result, scores, final_validation = {}, {}, None
    if report_split:
        prediction = trainer.predict(data.as_arrays(splits[report_split]))
        # The saved model's own score on the validation actors: the last epoch's, unless its weights were averaged.
        # (`predict`, unlike `evaluate`, adds nothing to the per-epoch log.)
        if validation is not None:
            final_validation = (prediction if report_split == "validation"
                                else trainer.predict(data.as_arrays(validation))).metrics["test_unweighted_accuracy"]
        result = metric.compute(predictions=prediction.predictions.argmax(-1), references=prediction.label_ids,
                                num_labels=config.num_labels)
        scores = {**result, "per_class": {
            label: {"precision": result["precision"][i], "recall": result["recall"][i], "f1": result["f1"][i],
                    "support": result["support"][i]} for i, label in enumerate(labels)}}
    metrics = {
        "protocol": protocol,
        "evaluated_on": report_split,
        "actors": {name: sorted(set(split["actor"])) for name, split in splits.items()},
        "clips": {name: len(split) for name, split in splits.items()},
        "labels": labels,
        **scores,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(seconds, 1),
        "epochs_run": round(trainer.state.epoch),
        "best_validation_unweighted_accuracy": trainer.state.best_metric,
        "final_validation_unweighted_accuracy": final_validation,
        "train_loss_per_epoch": [h["loss"] for h in trainer.state.log_history if "loss" in h],
        "train_accuracy_per_epoch": [h["train_accuracy"] for h in trainer.state.log_history if "train_accuracy" in h],
        "validation_unweighted_accuracy_per_epoch": [
            h["eval_unweighted_accuracy"] for h in trainer.state.log_history if "eval_unweighted_accuracy" in h],
        "recipe": recipe.__dict__,
        "machine": machine(),
    }
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if result:
        (output_dir / "classification_report.txt").write_text(plots.classification_report(result, labels, report_split))
        plots.confusion_matrix(np.asarray(result["confusion_matrix"]), labels, output_dir / "confusion_matrix.png",
                               title=f"{report_split}: UA {result['unweighted_accuracy']:.1%}")
    plots.learning_curves(trainer.state.log_history, output_dir / "learning_curves.png")
    return metrics
