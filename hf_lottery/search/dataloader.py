"""Search data for Trainer integrations: exact, deterministic per-process shards of a dataset."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable

from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from .. import distributed
from ..structure import unwrap_model
from ..tasks.dataset import check_present, find_label_column


def shard_bounds(num_examples: int, num_shards: int, index: int) -> tuple[int, int]:
    """Contiguous, non-overlapping shard `index` of `num_examples` (sizes differ by at most one; nothing repeated).

    ```python
    >>> [shard_bounds(10, 3, i) for i in range(3)]
    [(0, 4), (4, 7), (7, 10)]

    ```
    """
    base, extra = divmod(num_examples, num_shards)
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


def search_dataloader(
    dataset: Dataset | Iterable,
    *,
    batch_size: int = 32,
    collate_fn: Callable | None = None,
    model: nn.Module | None = None,
) -> Iterable:
    """A deterministic dataloader over this process's contiguous shard of `dataset` (all of it on one process).

    Unlike a `DistributedSampler` (which pads by repeating examples) every example is seen exactly once across
    processes, so summed importance scores and gathered metrics equal a single-process run over the same batches.
    Columns the model's forward does not take (raw text, ids) are dropped from a `datasets.Dataset`. An existing
    `DataLoader` or list of batches is returned unchanged (shard it yourself under a distributed launch).

    ```python
    >>> import datasets
    >>> dev = datasets.Dataset.from_dict({"input_ids": [[5, 6, 7]] * 5, "label": [0, 1, 0, 1, 0]}).with_format("torch")
    >>> [batch["label"].tolist() for batch in search_dataloader(dev, batch_size=2)]
    [[0, 1], [0, 1], [0]]
    >>> batches = [{"input_ids": dev["input_ids"], "labels": dev["label"]}]
    >>> search_dataloader(batches) is batches  # a list of batches is used as it is
    True

    ```
    """
    if isinstance(dataset, DataLoader) or isinstance(dataset, list) and dataset and isinstance(dataset[0], dict):
        return dataset
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(
            f"Search data must be a map-style dataset (e.g. datasets.Dataset) or a DataLoader; got {type(dataset).__name__}."
        )
    if len(dataset) == 0:
        raise ValueError("The search dataset is empty.")
    columns = getattr(dataset, "column_names", None)
    if columns is not None and (labels := find_label_column(columns, "The search data")) is not None:
        check_present(dataset.with_format(None)[labels], f"The search data's {labels!r} column")
    if columns is not None and model is not None:
        accepted = set(inspect.signature(unwrap_model(model).forward).parameters) | {"label", "labels", "label_ids"}
        if unused := [c for c in columns if c not in accepted]:
            dataset = dataset.remove_columns(unused)
    start, stop = shard_bounds(len(dataset), distributed.world_size(), distributed.rank())
    shard = dataset.select(range(start, stop)) if hasattr(dataset, "select") else Subset(dataset, range(start, stop))
    return DataLoader(shard, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
