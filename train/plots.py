"""Figures and text reports written beside each trained model."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_matrix(matrix: np.ndarray, labels: list[str], path: Path, title: str = "") -> None:
    """Row-normalized confusion matrix (recall per true class) with the raw counts in each cell."""
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center",
                    color="white" if rates[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def learning_curves(log_history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, training vs validation, from `Trainer.state.log_history`."""
    def series(key):
        points = [(h["epoch"], h[key]) for h in log_history if key in h]
        return zip(*points) if points else ((), ())

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    loss_ax.plot(*series("loss"), label="train")
    loss_ax.plot(*series("eval_loss"), label="validation")
    loss_ax.set_title("loss")
    acc_ax.plot(*series("train_accuracy"), label="train accuracy (augmented)")
    acc_ax.plot(*series("eval_accuracy"), label="validation accuracy")
    acc_ax.plot(*series("eval_unweighted_accuracy"), label="validation UA")
    acc_ax.set_title("accuracy")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reliability_diagram(calibration: dict, path: Path, title: str = "") -> None:
    """Accuracy against confidence per bin, before and after the temperature, with each one's ECE."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfect calibration")
    for name, style in (("before", "o-"), ("after", "s-")):
        rows = [r for r in calibration[name]["reliability"] if r["clips"]]
        label = (f"{name} (T = {calibration['temperature']:.2f}) " if name == "after" else f"{name} ") + \
            f"ECE {calibration[name]['ece']:.3f}"
        ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], style, label=label)
    ax.set_xlabel("confidence (top class probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"reliability, {title}")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def classification_report(result: dict, labels: list[str], split: str) -> str:
    lines = [f"Evaluated on: {split}", f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for i, label in enumerate(labels):
        lines.append(f"{label:<12}{result['precision'][i]:>10.3f}{result['recall'][i]:>10.3f}"
                     f"{result['f1'][i]:>10.3f}{result['support'][i]:>10d}")
    lines += ["",
              f"accuracy (WA)            {result['accuracy']:.4f}",
              f"unweighted accuracy (UA) {result['unweighted_accuracy']:.4f}",
              f"macro F1                 {result['macro_f1']:.4f}"]
    return "\n".join(lines) + "\n"
