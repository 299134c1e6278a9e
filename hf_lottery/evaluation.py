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
from .search.stop_rule import resolve_metric
from .structure import unwrap_model


@dataclass
class EvalResult:
    """Predictions (logits) and labels of one pass, gathered over all processes, and the metric on them."""

    metric: float | None
    predictions: np.ndarray
    labels: np.ndarray
    loss: float
    num_examples: int


def batch_to_device(batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
    """Move a dict batch (what `DataCollatorWithPadding` yields) to `device`; the label key becomes ``labels``."""
    if not isinstance(batch, Mapping):
        raise TypeError(
            "hf-lottery expects batches as dicts of tensors (input_ids, attention_mask, labels, ...), e.g. from "
            f"`transformers.DataCollatorWithPadding`; got {type(batch).__name__}."
        )
    moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
    if "labels" not in moved:
        for alias in ("label", "label_ids"):
            if alias in moved:
                moved["labels"] = moved.pop(alias)
                break
    if "labels" not in moved:
        raise ValueError(
            f"Batches need a `labels` tensor to compute the loss and the metric; got keys {sorted(moved)}."
        )
    return moved


def model_device(model: nn.Module) -> torch.device:
    return next(unwrap_model(model).parameters()).device


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Switch to eval mode (dropout off) and back to the previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def progress_bar(iterable: Iterable, desc: str, enabled: bool = True, total: int | None = None) -> Iterable:
    """A tqdm bar shown only on the main process."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    disable = not enabled or not distributed.is_main_process()
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False, dynamic_ncols=True)


def manual_bar(desc: str, enabled: bool = True, total: int | None = None) -> tqdm:
    """A tqdm bar updated by hand (``bar.update(1)``), shown only on the main process."""
    disable = not enabled or not distributed.is_main_process()
    return tqdm(desc=desc, total=total, disable=disable, leave=True, dynamic_ncols=True)


class PredictionCollector:
    """Accumulates logits and labels of batches; `finish()` gathers them across processes."""

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
    >>> result = evaluate(model, dev_loader, metric="sst2")   # doctest: +SKIP
    >>> result.metric
    0.9013
    ```
    """
    device = model_device(model)
    collector = PredictionCollector()
    with eval_mode(model):
        for batch in progress_bar(dataloader, desc, progress):
            batch = batch_to_device(batch, device)
            outputs = model(**batch)
            collector.add(outputs.logits, batch["labels"], outputs.loss)
    return collector.finish(metric)
