"""Calibration: how far the model's confidence is from how often it is right, and the temperature that closes the
gap. The temperature is fitted on held-out speakers after training and stored in `SERConfig.calibration_temperature`, where the
model applies it, so every way of running the model returns the same calibrated probabilities."""

from __future__ import annotations

import numpy as np
import torch

BINS = 15


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, references: np.ndarray) -> float:
    """Mean cross-entropy of the true classes."""
    log_probabilities = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1)
    return float(-log_probabilities[torch.arange(len(references)), torch.as_tensor(references)].mean())


def reliability(probabilities: np.ndarray, references: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per equal-width confidence bin: clips, mean confidence and accuracy (of the top class)."""
    confidence = probabilities.max(axis=-1)
    correct = probabilities.argmax(axis=-1) == references
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        rows.append({"low": float(low), "high": float(high), "clips": int(inside.sum()),
                     "confidence": float(confidence[inside].mean()) if inside.any() else None,
                     "accuracy": float(correct[inside].mean()) if inside.any() else None})
    return rows


def expected_calibration_error(probabilities: np.ndarray, references: np.ndarray, bins: int = BINS) -> float:
    """ECE: the clip-weighted mean gap between confidence and accuracy over equal-width bins."""
    return binned_ece(reliability(probabilities, references, bins))


def binned_ece(rows: list[dict]) -> float:
    """ECE of `reliability` bins."""
    total = sum(row["clips"] for row in rows)
    return float(sum(row["clips"] / total * abs(row["confidence"] - row["accuracy"]) for row in rows if row["clips"]))


def pooled_reliability(tables: list[list[dict]]) -> list[dict]:
    """The `reliability` bins of several runs' clips taken together (each run scored on its own test clips)."""
    rows = []
    for same_bin in zip(*tables):
        clips = sum(row["clips"] for row in same_bin)
        rows.append({"low": same_bin[0]["low"], "high": same_bin[0]["high"], "clips": clips, **{
            key: sum(row["clips"] * row[key] for row in same_bin if row["clips"]) / clips if clips else None
            for key in ("confidence", "accuracy")}})
    return rows


def ece_sampling_floor(rows: list[dict]) -> float:
    """The ECE that a perfectly calibrated model would still show, on average, with the clips and confidences of
    these `reliability` bins: in a bin of n clips of confidence c its share right is Binomial(n, c) / n, and
    |share - c| is rarely 0 on few clips. An ECE near this floor is as calibrated as that many clips can tell."""
    total = sum(row["clips"] for row in rows)
    floor = 0.0
    for row in rows:
        if not row["clips"]:
            continue
        n, confidence = row["clips"], min(max(row["confidence"], 0.0), 1.0)
        right = torch.arange(n + 1, dtype=torch.float64)
        binomial = torch.distributions.Binomial(n, probs=torch.tensor(confidence, dtype=torch.float64))
        chance = binomial.log_prob(right).exp()
        floor += n / total * float((chance * (right / n - confidence).abs()).sum())
    return floor


def fit_temperature(logits: np.ndarray, references: np.ndarray) -> float:
    """The temperature that minimizes the negative log-likelihood of `references` under softmax(logits / T)."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    references = torch.as_tensor(references)
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_temperature.exp(), references)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp())


def risk_coverage(probabilities: np.ndarray, references: np.ndarray, steps: int = 20) -> list[dict]:
    """For thresholds from 0 to 0.95: the share of clips answered (top probability at least the threshold) and the
    accuracy on them."""
    confidence = probabilities.max(axis=-1)
    correct = probabilities.argmax(axis=-1) == references
    rows = []
    for threshold in np.linspace(0, 1, steps + 1)[:-1]:
        answered = confidence >= threshold
        rows.append({"threshold": float(threshold), "coverage": float(answered.mean()),
                     "accuracy": float(correct[answered].mean()) if answered.any() else None})
    return rows


def at_threshold(probabilities: np.ndarray, references: np.ndarray, threshold: float) -> dict:
    """Where a threshold sits: the share of clips answered (top probability at least `threshold`), the accuracy on
    them and on the clips held back as "not sure"."""
    confidence = probabilities.max(axis=-1)
    correct = probabilities.argmax(axis=-1) == references
    answered = confidence >= threshold
    return {"threshold": float(threshold), "coverage": float(answered.mean()),
            "accuracy_answered": float(correct[answered].mean()) if answered.any() else None,
            "accuracy_held_back": float(correct[~answered].mean()) if (~answered).any() else None}


def choose_threshold(probabilities: np.ndarray, references: np.ndarray) -> float:
    """The confidence threshold below which the model says "not sure": the highest one at which the clips it holds
    back are still wrong more often than right (0 when even the least confident clips are mostly right)."""
    confidence = probabilities.max(axis=-1)
    correct = (probabilities.argmax(axis=-1) == references)[np.argsort(confidence)]
    confidence = np.sort(confidence)
    held_back_accuracy = np.cumsum(correct) / np.arange(1, len(correct) + 1)  # of the k least confident clips
    mostly_wrong = np.flatnonzero(held_back_accuracy < 0.5)
    if not len(mostly_wrong):
        return 0.0
    k = mostly_wrong[-1]  # hold back clips 0..k
    return float(confidence[k + 1]) if k + 1 < len(confidence) else float(confidence[k] + 1e-6)


def report(logits: np.ndarray, references: np.ndarray) -> dict:
    """ECE, NLL and the reliability bins of `logits` against `references`."""
    probabilities = softmax(logits)
    bins = reliability(probabilities, references)
    return {"ece": binned_ece(bins), "ece_sampling_floor": ece_sampling_floor(bins),
            "nll": negative_log_likelihood(logits, references),
            "reliability": bins,
            "risk_coverage": risk_coverage(probabilities, references)}
