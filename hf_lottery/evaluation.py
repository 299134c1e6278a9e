"""Forward passes over a dataloader: predictions, labels and the task metric, gathered across processes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .structure import unwrap_model
from .tasks.metrics import resolve_metric


@dataclass
class EvalResult:
    """Predictions (logits) and labels of one pass, gathered over all processes, and the metric on them."""

    metric: float | None
    predictions: np.ndarray
    labels: np.ndarray
    loss: float
    num_examples: int


def batch_to_device(batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
    """Move a dict batch (what `DataCollatorWithPadding` yields) to `device`; the label key becomes ``labels``.

    ```python
    >>> batch = {"input_ids": torch.tensor([[5, 6, 7]]), "label": torch.tensor([1])}
    >>> sorted(batch_to_device(batch, torch.device("cpu")))
    ['input_ids', 'labels']

    ```
    """
    if not isinstance(batch, Mapping):
        raise TypeError(
            "hf-lottery expects batches as dicts of tensors (input_ids, attention_mask, labels, ...), e.g. from "
            f"`transformers.DataCollatorWithPadding`; got {type(batch).__name__}."
        )
    moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
    key = next((key for key in ("labels", "label", "label_ids") if key in moved), None)
    if key is None:
        raise ValueError(
            f"Batches need a `labels` tensor to compute the loss and the metric; got keys {sorted(moved)}."
        )
    moved["labels"] = moved.pop(key)
    return moved


def check_labels(labels: torch.Tensor, model: nn.Module) -> None:
    """Refuse class labels outside ``[0, num_labels)`` with a clear error (torch would raise an IndexError, or a
    device-side assert on GPU). Regression and multi-label models are not checked.

    ```python
    >>> model = tiny_bert()
    >>> check_labels(torch.tensor([0, 1]), model)
    >>> check_labels(torch.tensor([0, 2]), model)
    Traceback (most recent call last):
    ...
    ValueError: A search batch has label 2, outside [0, 2): the model has num_labels=2. ...

    ```
    """
    config = getattr(unwrap_model(model), "config", None)
    num_labels = getattr(config, "num_labels", None)
    problem = getattr(config, "problem_type", None)
    if not isinstance(num_labels, int) or num_labels < 2 or problem not in (None, "single_label_classification"):
        return
    if labels.is_floating_point() and labels.ndim == 1 and problem is None:  # transformers would pick multi-label
        raise ValueError(
            f"A search batch has float labels (e.g. {float(labels.flatten()[0]):g}) for a model of num_labels="
            f"{num_labels} classes: class labels are integers 0..{num_labels - 1}; scores (STS-B) need num_labels=1."
        )
    if labels.is_floating_point() or labels.dtype == torch.bool or labels.numel() == 0:
        return
    bad = labels[(labels < 0) | (labels >= num_labels)]
    if bad.numel():
        raise ValueError(
            f"A search batch has label {int(bad.flatten()[0])}, outside [0, {num_labels}): the model has "
            f"num_labels={num_labels}. Map the dataset's labels to 0..{num_labels - 1} (or load the model with the "
            "task's number of labels)."
        )


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters.

    ```python
    >>> model_device(tiny_bert())
    device(type='cpu')

    ```
    """
    return next(unwrap_model(model).parameters()).device


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Switch to eval mode (dropout off) and back to the previous mode afterwards.

    ```python
    >>> model = tiny_bert().train()
    >>> with eval_mode(model):
    ...     model.training
    False
    >>> model.training
    True

    ```
    """
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def progress_bar(iterable: Iterable | None, desc: str, enabled: bool = True, total: int | None = None) -> tqdm:
    """A tqdm bar shown only on the main process: over `iterable`, or, for None, updated by hand (``bar.update(1)``)
    and left on screen, with an ETA when `total` is given.

    ```python
    >>> bar = progress_bar(None, "search", enabled=False, total=3)
    >>> bar.total, bar.disable
    (3, True)
    >>> bar.close()

    ```
    """
    disable = not enabled or not distributed.is_main_process()
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=iterable is None, dynamic_ncols=True)


class PredictionCollector:
    """Accumulates logits and labels of batches; `finish()` gathers them across processes.

    ```python
    >>> collector = PredictionCollector()
    >>> collector.add(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1]), loss=None)
    >>> collector.finish("sst2").metric
    0.5

    ```
    """

    def __init__(self) -> None:
        self.predictions: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.loss_sum = 0.0
        self.batches = 0

    def add(self, logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor | None) -> None:
        self.predictions.append(logits.detach().float().cpu().numpy())
        self.labels.append(labels.detach().cpu().numpy())
        if loss is not None:
            self.loss_sum += float(loss.detach())
            self.batches += 1

    def finish(self, metric: Any = None) -> EvalResult:
        if not self.predictions:
            raise ValueError("The dataloader yielded no batches; the search/evaluation data is empty.")
        predictions = distributed.gather_arrays(np.concatenate(self.predictions, axis=0))
        labels = distributed.gather_arrays(np.concatenate(self.labels, axis=0))
        totals = distributed.all_reduce_sum(torch.tensor([self.loss_sum, float(self.batches)], dtype=torch.float64))
        loss = float(totals[0] / max(totals[1], 1.0))
        value = None if metric is None else resolve_metric(metric)(predictions, labels)
        return EvalResult(metric=value, predictions=predictions, labels=labels, loss=loss, num_examples=len(labels))


@torch.no_grad()
def evaluate(
    model: nn.Module, dataloader: Iterable, metric: Any = None, *, progress: bool = True, desc: str = "evaluate"
) -> EvalResult:
    """Run `model` over `dataloader` in eval mode without gradients and compute `metric` on all predictions.

    Under a distributed launch, give each process its shard of the data; predictions are gathered in rank order.

    Example:

    ```python
    >>> batches = [{"input_ids": torch.randint(0, 99, (4, 7)), "label": torch.tensor([0, 1, 1, 0])}] * 2
    >>> result = evaluate(tiny_bert(), batches, metric="sst2", progress=False)
    >>> result.labels.tolist(), result.predictions.shape, 0.0 <= result.metric <= 1.0
    ([0, 1, 1, 0, 0, 1, 1, 0], (8, 2), True)

    ```
    """
    device = model_device(model)
    collector = PredictionCollector()
    with eval_mode(model):
        for batch in progress_bar(dataloader, desc, progress):
            batch = batch_to_device(batch, device)
            check_labels(batch["labels"], model)
            outputs = model(**batch)
            collector.add(outputs.logits, batch["labels"], outputs.loss)
    return collector.finish(metric)
