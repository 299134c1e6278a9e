"""The stop rule of the ticket search: keep pruning while ``metric >= threshold × full-model metric``.

A metric is given as a GLUE task name (resolved through `hf_lottery.metrics.get_task_metric`), an object with a
``score(predictions, labels)`` method, or a plain callable ``(predictions, labels) -> float | dict`` (a dict must hold
``"score"``). Predictions are logits ``[N, C]`` (or ``[N]`` / ``[N, 1]`` for regression).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


MetricFn = Callable[[np.ndarray, np.ndarray], float]


class DegenerateStopRuleWarning(UserWarning):
    """The stop-rule threshold is at or below what a constant predictor scores."""


def resolve_metric(metric: Any) -> MetricFn:
    """Turn a task name, a metric object or a callable into ``fn(predictions, labels) -> float``."""
    if isinstance(metric, str):
        from ..metrics import get_task_metric

        metric = get_task_metric(metric)
    if hasattr(metric, "score") and callable(metric.score):
        return lambda predictions, labels: float(metric.score(predictions, labels))
    if callable(metric):

        def call(predictions: np.ndarray, labels: np.ndarray) -> float:
            value = metric(predictions, labels)
            if isinstance(value, dict):
                if "score" not in value:
                    raise ValueError(f"A metric returning a dict must include 'score'; got keys {sorted(value)}.")
                value = value["score"]
            return float(value)

        return call
    raise TypeError(
        "`metric` must be a GLUE task name (e.g. 'sst2'), an object with `score(predictions, labels)`, or a callable "
        f"`(predictions, labels) -> float`; got {type(metric).__name__}."
    )


def constant_predictor_score(metric_fn: MetricFn, predictions: np.ndarray, labels: np.ndarray) -> float:
    """The best score any constant predictor reaches on `labels`, measured with the metric itself.

    Classification (logits ``[N, C]`` with C > 1): the best of "always class c" (the majority class for accuracy,
    0 for MCC). Regression: predicting the mean label (0 for correlations, which are undefined for a constant).
    """
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        scores = []
        for c in range(predictions.shape[1]):
            constant = np.zeros_like(predictions, dtype=np.float32)
            constant[:, c] = 1.0
            scores.append(_safe(metric_fn, constant, labels))
        return max(scores)
    constant = np.full(predictions.shape, float(np.mean(labels)), dtype=np.float32)
    return _safe(metric_fn, constant, labels)


def _safe(metric_fn: MetricFn, predictions: np.ndarray, labels: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = metric_fn(predictions, labels)
    return 0.0 if value is None or np.isnan(value) else float(value)


@dataclass(frozen=True)
class StopRule:
    """``passes(metric)`` is ``metric >= threshold × full_metric``; `degenerate` flags a rule a constant predictor passes."""

    threshold: float
    full_metric: float
    constant_baseline: float

    @property
    def threshold_value(self) -> float:
        return self.threshold * self.full_metric

    @property
    def degenerate(self) -> bool:
        return self.threshold_value <= self.constant_baseline

    def passes(self, metric: float) -> bool:
        return metric >= self.threshold_value

    def to_dict(self) -> dict[str, float | bool]:
        return {
            "threshold": self.threshold,
            "full_metric": self.full_metric,
            "threshold_value": self.threshold_value,
            "constant_baseline": self.constant_baseline,
            "degenerate": self.degenerate,
        }

    def check(self, on_degenerate: str = "warn") -> None:
        """Warn (``"warn"``), raise (``"raise"``) or do nothing (``"ignore"``) when the rule is degenerate."""
        if on_degenerate not in ("warn", "raise", "ignore"):
            raise ValueError(f"`on_degenerate` must be 'warn', 'raise' or 'ignore'; got {on_degenerate!r}.")
        if not self.degenerate or on_degenerate == "ignore":
            return
        message = (
            f"The stop rule cannot tell a subnetwork from a constant predictor: {self.threshold} × full metric "
            f"{self.full_metric:.4f} = {self.threshold_value:.4f} is at or below the constant-predictor score "
            f"{self.constant_baseline:.4f} on the same data. The search may prune everything (as the paper's WNLI masks "
            "did). Fine-tune the full model better, use a larger search set, or raise the threshold."
        )
        if on_degenerate == "raise":
            raise ValueError(message)
        warnings.warn(message, DegenerateStopRuleWarning, stacklevel=3)


def validate_threshold(threshold: float) -> float:
    if not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"`threshold` must be a number in (0, 1] (the paper uses 0.9); got {threshold!r}.")
    return float(threshold)
