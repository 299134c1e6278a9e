"""GLUE task metrics computed directly (no `evaluate.load`, which needs the Hub), as GLUE's own scorer does.

Stop-rule metric per task (the paper's): CoLA Matthews correlation, STS-B the mean of Pearson and Spearman, MNLI
matched accuracy, accuracy elsewhere; MRPC and QQP also report F1. Degenerate inputs (a constant prediction makes
MCC and correlations undefined) score 0.0 rather than NaN, as scikit-learn does for MCC.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


def _labels_from(predictions: np.ndarray, is_regression: bool) -> np.ndarray:
    predictions = np.asarray(predictions)
    if is_regression:
        return predictions.reshape(len(predictions), -1)[:, 0].astype(np.float64)
    if predictions.ndim == 1:
        return predictions.astype(np.int64)
    return predictions.argmax(axis=-1)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float((predicted == labels).mean()) if len(labels) else 0.0


def f1_binary(predicted: np.ndarray, labels: np.ndarray) -> float:
    """F1 of the positive class (label 1); 0.0 when there are no true or predicted positives."""
    tp = int(((predicted == 1) & (labels == 1)).sum())
    fp = int(((predicted == 1) & (labels != 1)).sum())
    fn = int(((predicted != 1) & (labels == 1)).sum())
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def matthews(predicted: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import matthews_corrcoef

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(matthews_corrcoef(labels, predicted))


def _correlation(kind: str, predicted: np.ndarray, labels: np.ndarray) -> float:
    from scipy import stats

    if len(labels) < 2 or np.std(predicted) == 0 or np.std(labels) == 0:
        return 0.0
    value = stats.pearsonr(predicted, labels)[0] if kind == "pearson" else stats.spearmanr(predicted, labels)[0]
    return 0.0 if np.isnan(value) else float(value)


@dataclass(frozen=True)
class TaskMetric:
    """The metrics of one task and its stop-rule metric (``score``).

    Example:

    ```python
    >>> metric = get_task_metric("CoLA")
    >>> metric.compute(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 0]))["mcc"]
    1.0
    ```
    """

    task: str
    name: str
    is_regression: bool = False
    reports_f1: bool = False

    def compute(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """All metrics from logits ``[N, C]`` (or regression outputs ``[N]`` / ``[N, 1]``); ``"score"`` included."""
        labels = np.asarray(labels)
        predicted = _labels_from(predictions, self.is_regression)
        if len(predicted) != len(labels):
            raise ValueError(f"{len(predicted)} predictions for {len(labels)} labels.")
        if self.is_regression:
            labels = labels.astype(np.float64)
            pearson, spearman = _correlation("pearson", predicted, labels), _correlation("spearman", predicted, labels)
            values = {"pearson": pearson, "spearman": spearman, "pearson_spearman_mean": (pearson + spearman) / 2}
        else:
            values = {"accuracy": accuracy(predicted, labels)}
            if self.name == "mcc":
                values["mcc"] = matthews(predicted, labels)
            if self.reports_f1:
                values["f1"] = f1_binary(predicted, labels)
                values["accuracy_f1_mean"] = (values["accuracy"] + values["f1"]) / 2
        values["score"] = values[self.name]
        return values

    def score(self, predictions: np.ndarray, labels: np.ndarray) -> float:
        return self.compute(predictions, labels)["score"]

    def __call__(self, predictions: np.ndarray, labels: np.ndarray) -> float:
        return self.score(predictions, labels)

    def constant_baseline(self, labels: np.ndarray) -> float:
        """Best stop-rule score of a constant predictor: majority-class accuracy; 0 for MCC and correlations."""
        labels = np.asarray(labels)
        if self.name != "accuracy" or len(labels) == 0:
            return 0.0
        _, counts = np.unique(labels, return_counts=True)
        return float(counts.max() / len(labels))


_METRICS = {
    "cola": TaskMetric("cola", "mcc"),
    "sst2": TaskMetric("sst2", "accuracy"),
    "mrpc": TaskMetric("mrpc", "accuracy", reports_f1=True),
    "qqp": TaskMetric("qqp", "accuracy", reports_f1=True),
    "stsb": TaskMetric("stsb", "pearson_spearman_mean", is_regression=True),
    "mnli": TaskMetric("mnli", "accuracy"),
    "mnli-mm": TaskMetric("mnli-mm", "accuracy"),
    "qnli": TaskMetric("qnli", "accuracy"),
    "rte": TaskMetric("rte", "accuracy"),
    "wnli": TaskMetric("wnli", "accuracy"),
    "demo": TaskMetric("demo", "accuracy"),
}


def get_task_metric(task: str) -> TaskMetric:
    """The `TaskMetric` of a GLUE task (any common spelling: "SST-2", "sst2", "sst-2") or ``demo``."""
    if not isinstance(task, str):
        raise TypeError(f"`task` must be a task name such as 'sst2'; got {type(task).__name__}.")
    key = task.lower().replace("_", "-")
    if key in ("mnli-mm", "mnli-mismatched"):
        return _METRICS["mnli-mm"]
    from .glue import canonical_task_name

    return _METRICS[canonical_task_name(task)]
