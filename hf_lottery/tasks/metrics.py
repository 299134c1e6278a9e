"""Every metric the library uses, resolved in one place.

GLUE metrics are computed locally with scikit-learn and scipy (`evaluate.load("glue")` needs the Hub). The stop-rule
metric is the paper's: CoLA Matthews correlation, STS-B the mean of Pearson and Spearman, MNLI matched accuracy,
accuracy elsewhere; MRPC and QQP also report F1. Undefined values (a constant prediction) score 0.0, not NaN.

`resolve_metric` turns a search metric (`resolve_search_metric`) into ``fn(predictions, labels) -> float``. This
module does not import `evaluate` (it loads `datasets`, about 5 s).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .glue import GLUE_TASKS, canonical_task_name, dev_split_name


__all__ = [
    "MetricFn",
    "TaskMetric",
    "constant_predictor_score",
    "get_task_metric",
    "glue_metric",
    "metric_from_compute_metrics",
    "metric_name",
    "task_of_metric",
    "resolve_metric",
    "resolve_search_metric",
]

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _correlations(predicted: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Pearson and Spearman correlations; 0.0 where undefined (fewer than 2 values, or a constant)."""
    from scipy import stats

    if len(labels) < 2 or np.std(predicted) == 0 or np.std(labels) == 0:
        return 0.0, 0.0
    values = stats.pearsonr(predicted, labels)[0], stats.spearmanr(predicted, labels)[0]
    return tuple(0.0 if np.isnan(value) else float(value) for value in values)


@dataclass(frozen=True)
class TaskMetric:
    """The metrics of one task and its stop-rule metric (``score``, named `name`).

    Keys follow `evaluate`'s GLUE metric: ``accuracy``, ``f1`` (of class 1; 0.0 without true or predicted
    positives), ``matthews_correlation``, ``pearson``, ``spearmanr``; plus ``accuracy_f1_mean``,
    ``pearson_spearman_mean`` and ``score``. No labels score 0.0.

    Example:

    ```python
    >>> metric = get_task_metric("CoLA")
    >>> metric.name
    'matthews_correlation'
    >>> metric.compute(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 0]))["matthews_correlation"]
    1.0
    >>> get_task_metric("mrpc").compute(np.array([1, 0, 1]), np.array([1, 1, 0]))
    {'accuracy': 0.333..., 'f1': 0.5, 'accuracy_f1_mean': 0.416..., 'score': 0.333...}

    ```
    """

    task: str
    name: str
    is_regression: bool = False
    reports_f1: bool = False

    @property
    def metric_name(self) -> str:
        """The name of the stop-rule metric (recorded in tickets)."""
        return self.name

    def compute(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """All metrics from logits ``[N, C]``, class ids ``[N]`` or regression outputs ``[N]`` / ``[N, 1]``."""
        from sklearn.metrics import f1_score, matthews_corrcoef

        labels, predicted = np.asarray(labels), np.asarray(predictions)
        scores = predicted.ndim == 1 and predicted.dtype.kind == "f" or predicted.ndim == 2 and predicted.shape[1] == 1
        logits = predicted.ndim == 2 and predicted.shape[1] > 1
        if labels.ndim > 1 or (logits if self.is_regression else scores):
            given = f"logits of {predicted.shape[-1]} classes" if logits else "one score per example (num_labels=1)"
            if labels.ndim > 1:
                given = f"labels of shape {labels.shape} (problem_type='multi_label_classification')"
            raise ValueError(
                f"The metric {self.name!r} of task {self.task!r} scores "
                f"{'regression' if self.is_regression else 'single-label classification'} (one label per example), "
                f"but it was given {given}. Use a metric of the model's kind ('stsb' scores regression), or load the "
                "model with the task's num_labels and problem_type."
            )
        if self.is_regression:
            predicted = predicted.reshape(len(predicted), -1)[:, 0].astype(np.float64)
        else:
            predicted = predicted.argmax(axis=-1) if predicted.ndim > 1 else predicted.astype(np.int64)
        if len(predicted) != len(labels):
            raise ValueError(f"{len(predicted)} predictions for {len(labels)} labels.")
        if self.is_regression:
            pearson, spearman = _correlations(predicted, labels.astype(np.float64))
            values = {"pearson": pearson, "spearmanr": spearman, "pearson_spearman_mean": (pearson + spearman) / 2}
        else:
            values = {"accuracy": float((predicted == labels).mean()) if len(labels) else 0.0}
            if self.name == "matthews_correlation":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values["matthews_correlation"] = float(matthews_corrcoef(labels, predicted))
            if self.reports_f1:
                values["f1"] = float(f1_score(labels == 1, predicted == 1, zero_division=0.0)) if len(labels) else 0.0
                values["accuracy_f1_mean"] = (values["accuracy"] + values["f1"]) / 2
        values["score"] = values[self.name]
        return values

    def score(self, predictions: np.ndarray, labels: np.ndarray) -> float:
        """The stop-rule metric alone."""
        return self.compute(predictions, labels)["score"]


def get_task_metric(task: str) -> TaskMetric:
    """The `TaskMetric` of a GLUE task (any common spelling: "SST-2", "sst2", "sst-2") or ``demo``.

    ```python
    >>> get_task_metric("STS-B").name
    'pearson_spearman_mean'

    ```
    """
    if not isinstance(task, str):
        raise TypeError(f"`task` must be a task name such as 'sst2'; got {type(task).__name__}.")
    spec = GLUE_TASKS[canonical_task_name(task)]
    name = "mnli-mm" if dev_split_name(task) == "validation_mismatched" else spec.name
    return TaskMetric(name, spec.metric, is_regression=spec.is_regression, reports_f1=spec.reports_f1)


def glue_metric(task: str, **kwargs: Any) -> Any:
    """The GLUE metric of `task` as an offline `evaluate.Metric`: `evaluate`'s GLUE keys, computed by `TaskMetric`.

    `kwargs` go to `evaluate.Metric` (e.g. ``experiment_id``); results are kept in memory by default.

    Example:

    ```python
    >>> metric = glue_metric("mrpc")
    >>> metric.compute(predictions=[1, 0, 1, 1], references=[1, 0, 0, 1])
    {'accuracy': 0.75, 'f1': 0.8}

    ```
    """
    from .glue_metric import GlueMetric  # defines an `evaluate.Metric` subclass: `import evaluate` costs ~5 s

    return GlueMetric(get_task_metric(task), **kwargs)


def _call_and_pick_score(metric: Callable, predictions: np.ndarray, labels: np.ndarray) -> float:
    value = metric(predictions, labels)
    if isinstance(value, dict):
        if "score" not in value:
            raise ValueError(f"A metric returning a dict must include 'score'; got keys {sorted(value)}.")
        value = value["score"]
    return float(value)


def resolve_metric(metric: Any) -> MetricFn:
    """Turn a task name, a metric object or a callable into ``fn(predictions, labels) -> float``.

    Example:

    ```python
    >>> fn = resolve_metric("sst2")
    >>> fn(np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([1, 1]))
    0.5
    >>> resolve_metric("squad")
    Traceback (most recent call last):
    ...
    ValueError: Unknown task 'squad'; choose one of ...

    ```
    """
    if isinstance(metric, str):
        metric = get_task_metric(metric)
    score = getattr(metric, "score", None)
    if callable(score):
        return lambda predictions, labels: float(score(predictions, labels))
    if callable(metric):
        return lambda predictions, labels: _call_and_pick_score(metric, predictions, labels)
    raise TypeError(
        "`metric` must be a GLUE task name (e.g. 'sst2'), an object with `score(predictions, labels)`, or a callable "
        f"`(predictions, labels) -> float`; got {type(metric).__name__}."
    )


def metric_name(metric: Any) -> str | None:
    """The name of a search metric when known (a task name, a `TaskMetric`, `glue_metric`, a `compute_metrics` key).

    ```python
    >>> metric_name("cola"), metric_name(lambda predictions, labels: 1.0)
    ('matthews_correlation', None)

    ```
    """
    if isinstance(metric, str):
        return get_task_metric(metric).name
    name = getattr(metric, "metric_name", None)
    return name if isinstance(name, str) else None


def task_of_metric(metric: Any) -> str | None:
    """The GLUE task a metric names (``"sst2"``, ``"SST-2"``), or None for callables and unknown names.

    ```python
    >>> task_of_metric("SST-2"), task_of_metric(len)
    ('sst2', None)

    ```
    """
    if not isinstance(metric, str):
        return None
    try:
        return get_task_metric(metric).task
    except (KeyError, ValueError):
        return None


def metric_from_compute_metrics(compute_metrics: Callable, key: str) -> MetricFn:
    """Adapt a Trainer `compute_metrics(EvalPrediction) -> dict` into the search's ``(predictions, labels) -> float``.

    Example:

    ```python
    >>> def compute_metrics(eval_prediction):
    ...     predicted = eval_prediction.predictions.argmax(-1)
    ...     return {"accuracy": float((predicted == eval_prediction.label_ids).mean())}
    >>> metric = metric_from_compute_metrics(compute_metrics, key="accuracy")
    >>> metric(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1, 1])), metric_name(metric)
    (0.5, 'accuracy')

    ```
    """
    from transformers import EvalPrediction

    def metric(predictions: np.ndarray, labels: np.ndarray) -> float:
        values = compute_metrics(EvalPrediction(predictions=predictions, label_ids=labels))
        for candidate in (key, f"eval_{key}"):
            if candidate in values:
                return float(values[candidate])
        raise ValueError(f"compute_metrics returned {sorted(values)}; it has no {key!r} for the stop rule.")

    metric.metric_name = key  # type: ignore[attr-defined]
    return metric


def resolve_search_metric(
    metric: Any = None, compute_metrics: Callable | None = None, metric_key: str | None = None
) -> Any:
    """The metric a search uses: `metric` (task name / callable), else `compute_metrics[metric_key]`.

    ```python
    >>> resolve_search_metric("sst2")
    'sst2'
    >>> resolve_search_metric()
    Traceback (most recent call last):
    ...
    ValueError: The ticket search needs a metric: ...

    ```
    """
    if metric is not None:
        return metric
    if compute_metrics is not None:
        if not metric_key:
            raise ValueError(
                "Pass `metric_key` (e.g. 'accuracy') to use a Trainer's `compute_metrics` for the stop rule."
            )
        return metric_from_compute_metrics(compute_metrics, metric_key)
    raise ValueError(
        "The ticket search needs a metric: pass `metric=` a GLUE task name such as 'sst2' or a callable "
        "`(logits, labels) -> float`, or `compute_metrics=` your Trainer's compute_metrics with `metric_key=`."
    )


def constant_predictor_score(metric_fn: MetricFn, predictions: np.ndarray, labels: np.ndarray) -> float:
    """The best score any constant predictor reaches on `labels`, measured with the metric itself.

    Classification (logits ``[N, C]`` with C > 1): the best of "always class c" (the majority class for accuracy,
    0 for MCC). Regression: predicting the mean label (0 for correlations, which are undefined for a constant).

    ```python
    >>> constant_predictor_score(resolve_metric("sst2"), np.zeros((4, 2)), np.array([1, 1, 1, 0]))
    0.75

    ```
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if predictions.ndim == 2 and predictions.shape[1] > 1:
            constants = [np.tile(row, (len(predictions), 1)) for row in np.eye(predictions.shape[1], dtype=np.float32)]
        else:
            constants = [np.full(predictions.shape, float(np.mean(labels)), dtype=np.float32)]
        scores = [metric_fn(constant, labels) for constant in constants]
    return max(0.0 if value is None or np.isnan(value) else float(value) for value in scores)
