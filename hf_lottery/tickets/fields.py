"""The fields of a `LotteryTicket`: their names, and the checks that fail a bad value at construction with a
`ValueError` / `TypeError` naming the field and what is expected. It imports nothing of the ticket."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
from typing import Any

import numpy as np
import torch

from ..structure import DIM_KEYS


METHODS = ("structured", "magnitude")
KINDS = ("good", "random", "bad", "super-good", "super-random", "super-bad", "full", "custom")

# bert-base dimensions, used for tickets imported from the paper's legacy .npy masks.
BERT_BASE_DIMS = {"num_layers": 12, "num_heads": 12, "head_size": 64, "hidden_size": 768, "intermediate_size": 3072}
LAYER_NAME = re.compile(r"^layer\.(\d+)\.(.+)\.(weight|bias)$")


def as_bool_mask(name: str, value: Any, ndim: int | None = None) -> torch.Tensor:
    """Turn a 0/1 tensor, array or nested list into a bool tensor, or raise a `ValueError` naming the mask.

    Example:

    ```python
    >>> as_bool_mask("mlp_mask", [1, 0, 1])
    tensor([ True, False,  True])
    >>> as_bool_mask("mlp_mask", [1, 0.5])
    Traceback (most recent call last):
    ValueError: `mlp_mask` must contain only 0 and 1 (or be bool); found torch.float32 values such as [0.5].

    ```
    """
    try:
        tensor = torch.as_tensor(value).detach().cpu()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"`{name}` must be a tensor or (nested) list of 0/1 values of one shape; {err}") from err
    if ndim is not None and tensor.ndim != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimension(s); got shape {tuple(tensor.shape)}.")
    if tensor.dtype == torch.bool:
        return tensor.clone()
    dtype = tensor.dtype
    if tensor.is_complex():
        raise ValueError(f"`{name}` has dtype {dtype}; a mask is bool, or integers or real floats of 0 and 1.")
    if tensor.is_floating_point() and tensor.element_size() < 4:
        tensor = tensor.float()  # float8 / float16 / bfloat16 (isfinite is not implemented for every float8)
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise ValueError(f"`{name}` must contain only 0 and 1; it contains NaN or infinite values.")
    bad = (tensor != 0) & (tensor != 1)
    if bad.any():
        examples = sorted({float(v) for v in tensor[bad].flatten()[:5].tolist()})
        raise ValueError(f"`{name}` must contain only 0 and 1 (or be bool); found {dtype} values such as {examples}.")
    return tensor != 0


def check_metadata(self: Any) -> None:
    """Type and range checks of a ticket's metadata fields (in place), so a bad value fails at once, naming it.

    Example:

    ```python
    >>> from types import SimpleNamespace
    >>> fields = SimpleNamespace(base_model=None, base_model_revision=None, task="sst2", search_data=None, seed=42,
    ...     threshold=0.9, history=[], metrics={}, extra={}, library_versions={}, model_dims=None)
    >>> check_metadata(fields)
    >>> fields.seed = "42"
    >>> check_metadata(fields)
    Traceback (most recent call last):
    TypeError: `seed` must be an integer or None; got str '42'.

    ```
    """
    for name in ("base_model", "base_model_revision"):
        value = getattr(self, name)
        value = os.fspath(value) if isinstance(value, os.PathLike) else value
        if value is not None and not isinstance(value, str):
            raise TypeError(f"`{name}` must be a Hub id, a local path or None; got {type(value).__name__}.")
        setattr(self, name, value or None)
    for name in ("task", "search_data"):
        value = getattr(self, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"`{name}` must be a string or None; got {type(value).__name__} {value!r}.")
    if self.seed is not None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise TypeError(f"`seed` must be an integer or None; got {type(self.seed).__name__} {self.seed!r}.")
        self.seed = int(self.seed)
    if self.threshold is not None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, numbers.Real):
            raise TypeError(f"`threshold` must be a number in (0, 1] or None; got {self.threshold!r}.")
        if not 0 < float(self.threshold) <= 1:
            raise ValueError(
                f"`threshold` must be in (0, 1] (a share of the full model's metric); got {self.threshold!r}."
            )
        self.threshold = float(self.threshold)
    if not isinstance(self.history, (list, tuple)) or not all(isinstance(step, dict) for step in self.history):
        raise TypeError(f"`history` must be a list of dicts (one per search step); got {self.history!r:.80}.")
    self.history = json_value(self.history, "history")
    for name in ("metrics", "extra", "library_versions"):
        value = getattr(self, name)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise TypeError(f"`{name}` must be a dict with string keys; got {value!r:.80}.")
        setattr(self, name, json_value(value, name))
    check_metrics(self.metrics)
    if not all(isinstance(v, str) for v in self.library_versions.values()):
        raise TypeError(f"`library_versions` must map library names to version strings; got {self.library_versions}.")
    if self.model_dims is not None:
        self.model_dims = check_dims(self.model_dims, tuple(self.head_mask.shape))


def check_metrics(metrics: dict[str, Any], where: str = "metrics") -> dict[str, Any]:
    """`metrics` if each score is a finite number or None (``metric_name`` a str, ``passes_stop_rule`` a bool)."""
    for key, value in metrics.items():
        kind = {"metric_name": str, "passes_stop_rule": bool}.get(key)
        number = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if value is not None and not (isinstance(value, kind) if kind else number):
            raise ValueError(
                f"`{where}[{key!r}]` must be {kind.__name__ if kind else 'a finite number'} or None; got "
                f"{type(value).__name__} {value!r:.40}. Record the score measured, or leave it out."
            )
    return metrics


def check_scores(name: str, value: Any, shape: tuple[int, ...]) -> torch.Tensor | None:
    """Importance scores as a float32 tensor of `shape`, finite, or a `ValueError` naming the field.

    Example:

    ```python
    >>> check_scores("mlp_importance", [0.5, float("nan")], (2,))
    Traceback (most recent call last):
    ValueError: `mlp_importance` must hold finite scores; it holds 1 NaN or infinite value(s) (a damaged importance pass or file).

    ```
    """
    if value is None:
        return None
    try:
        value = torch.as_tensor(value, dtype=torch.float32).detach().cpu().clone()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"`{name}` must be a float tensor of shape {shape}; {err}") from err
    if tuple(value.shape) != shape:
        raise ValueError(f"`{name}` must have shape {shape}; got {tuple(value.shape)}.")
    if not torch.isfinite(value).all():
        raise ValueError(
            f"`{name}` must hold finite scores; it holds {int((~torch.isfinite(value)).sum())} NaN or infinite "
            "value(s) (a damaged importance pass or file)."
        )
    return value


def json_value(value: Any, where: str, depth: int = 0) -> Any:
    """`value` with numpy / 0-d torch scalars and dataclasses made plain JSON, or a `TypeError` naming `where`.

    Example:

    ```python
    >>> import numpy as np
    >>> json_value({"accuracy": np.float32(0.5), "steps": (1, 2)}, "metrics")
    {'accuracy': 0.5, 'steps': [1, 2]}

    ```
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if depth > 100:
        raise ValueError(f"`{where.partition('[')[0]}` is nested over 100 levels deep; metadata is JSON of a few.")
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"`{where}` must have string keys; got {list(value)[:5]}.")
        return {k: json_value(v, f"{where}[{k!r}]", depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (np.generic, torch.Tensor)) and np.ndim(value) == 0:
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_value(dataclasses.asdict(value), where, depth + 1)
    raise TypeError(
        f"`{where}` must hold JSON values (str, number, bool, None, list, dict); got {type(value).__name__}."
    )


def check_dims(dims: Any, head_shape: tuple[int, ...]) -> dict[str, int]:
    """`model_dims` checked (a dict of the five positive dimensions agreeing with the head mask's shape).

    Example:

    ```python
    >>> check_dims({"num_layers": 1, "num_heads": 2, "head_size": 8, "hidden_size": -16, "intermediate_size": 37}, (1, 2))
    Traceback (most recent call last):
    ValueError: `model_dims['hidden_size']` must be a positive integer; got -16.

    ```
    """
    if not isinstance(dims, dict):
        raise ValueError(
            f"`model_dims` must be a dict with the keys {list(DIM_KEYS)} (see `EncoderStructure.dims()`); got "
            f"{type(dims).__name__} {dims!r:.80}."
        )
    if set(dims) != set(DIM_KEYS):
        raise ValueError(
            f"`model_dims` must have exactly the keys {list(DIM_KEYS)}; missing {sorted(set(DIM_KEYS) - set(dims))}, "
            f"unknown {sorted(map(str, set(dims) - set(DIM_KEYS)))}."
        )
    for key in DIM_KEYS:
        value = dims[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"`model_dims[{key!r}]` must be a positive integer; got {value!r}.")
    result = {key: int(dims[key]) for key in DIM_KEYS}
    if (result["num_layers"], result["num_heads"]) != head_shape:
        raise ValueError(f"`model_dims` {result} disagree with `head_mask` of shape {head_shape}.")
    return result
