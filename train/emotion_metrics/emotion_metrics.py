"""Classification metrics for emotion recognition, as an `evaluate` module.

Loaded with `evaluate.load(<this folder>)`; it works offline, unlike the Hub-hosted `accuracy`/`f1`
modules. Unweighted accuracy (UA, the mean of per-class recalls) is the speech-emotion field's
headline because classes are imbalanced; weighted accuracy (WA) is plain accuracy.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

_DESCRIPTION = "Accuracy (WA), unweighted accuracy (UA), macro-F1, per-class precision/recall/F1 and the confusion matrix."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted class ids.
    references (`list[int]`): true class ids.
    num_labels (`int`): number of classes (rows/columns of the confusion matrix).
Returns:
    accuracy, unweighted_accuracy, macro_f1, precision, recall, f1 (lists, one per class), confusion_matrix.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EmotionMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, num_labels):
        predictions, references = np.asarray(predictions), np.asarray(references)
        labels = list(range(num_labels))
        precision, recall, f1, support = precision_recall_fscore_support(
            references, predictions, labels=labels, zero_division=0
        )
        present = support > 0  # a class absent from the references has no recall to average
        return {
            "accuracy": float((predictions == references).mean()),
            "unweighted_accuracy": float(recall[present].mean()),
            "macro_f1": float(f1[present].mean()),
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "f1": f1.tolist(),
            "support": support.tolist(),
            "confusion_matrix": confusion_matrix(references, predictions, labels=labels).tolist(),
        }
