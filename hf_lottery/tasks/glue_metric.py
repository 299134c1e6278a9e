"""`GlueMetric`: the GLUE metrics as an `evaluate.Metric` that works offline (`evaluate.load("glue")` needs the Hub).

Build it with `hf_lottery.tasks.metrics.glue_metric`; importing this module costs about 5 s (`evaluate`, `datasets`).
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
import numpy as np


_CITATION = """@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={ICLR}, year={2019}}"""


class GlueMetric(evaluate.Metric):
    """A GLUE task's metrics (`evaluate`'s key names), computed offline by `hf_lottery.tasks.metrics.TaskMetric`.

    Args:
        task_metric: the `TaskMetric` of the task (`hf_lottery.tasks.metrics.get_task_metric(task)`).
        keep_in_memory: keep added predictions in memory rather than in a cache file (default True).
        kwargs: passed to `evaluate.Metric`.

    Example (in a Trainer's ``compute_metrics``):

    ```python
    >>> import numpy as np
    >>> from hf_lottery.tasks.metrics import glue_metric
    >>> cola = glue_metric("cola")
    >>> def compute_metrics(eval_prediction):
    ...     predicted = np.argmax(eval_prediction.predictions, axis=-1)
    ...     return cola.compute(predictions=predicted, references=eval_prediction.label_ids)
    >>> from transformers import EvalPrediction
    >>> compute_metrics(EvalPrediction(predictions=np.array([[0.0, 1.0], [1.0, 0.0]]), label_ids=np.array([1, 0])))
    {'matthews_correlation': 1.0}

    ```
    """

    def __init__(self, task_metric: Any, *, keep_in_memory: bool = True, **kwargs: Any):
        self.task_metric = task_metric
        kwargs.setdefault("config_name", task_metric.task)
        super().__init__(keep_in_memory=keep_in_memory, **kwargs)

    @property
    def metric_name(self) -> str:
        """The task's stop-rule metric (what a search records)."""
        return self.task_metric.name

    def _info(self) -> evaluate.MetricInfo:
        kind = "float32" if self.task_metric.is_regression else "int64"
        return evaluate.MetricInfo(
            description=f"GLUE {self.task_metric.task}: {self.task_metric.name} (computed offline by hf-lottery).",
            citation=_CITATION,
            inputs_description="predictions: predicted class ids (or scores for STS-B); references: gold labels.",
            features=datasets.Features({"predictions": datasets.Value(kind), "references": datasets.Value(kind)}),
        )

    def _compute(self, predictions: Any, references: Any) -> dict[str, float]:
        values = self.task_metric.compute(np.asarray(predictions), np.asarray(references))
        task = self.task_metric  # the keys `evaluate`'s own GLUE metric returns:
        keys = ("pearson", "spearmanr") if task.is_regression else (task.name,)
        keys += ("f1",) if task.reports_f1 else ()
        return {key: float(values[key]) for key in keys}

    def score(self, predictions: np.ndarray, labels: np.ndarray) -> float:
        """The stop-rule metric from logits (or class ids), so the metric can drive a ticket search directly."""
        return self.task_metric.score(predictions, labels)
