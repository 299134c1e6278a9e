"""Labelled synthetic attention maps of the five types, for training and testing the pattern classifier.

Each map is row-stochastic like a softmax attention map (rows sum to 1) over a random sequence length:

* block: tokens attend within their own segment (one or two segments, as in a sentence pair); [CLS] joins the first.
* diagonal: each token attends to its predecessor, itself or its successor (one offset per map).
* vertical: every token attends to a few fixed positions — [CLS], [SEP] and punctuation-like tokens.
* vertical+diagonal: both at once.
* heterogeneous: attention spread without structure (a random Dirichlet draw per row).

Noise (a small random logit per cell) and a temperature make them look like real maps rather than templates.
"""

from __future__ import annotations

import numpy as np

from .labels import PATTERNS


def _structure(kind: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """0/1 preference matrix of a pattern type."""
    pref = np.zeros((length, length))
    if kind in ("diagonal", "vertical+diagonal"):
        rows = np.arange(length)
        pref[rows, np.clip(rows + int(rng.choice([-1, 0, 1])), 0, length - 1)] = 1.0
    if kind in ("vertical", "vertical+diagonal"):
        extra = rng.choice(np.arange(1, length - 1), size=min(rng.integers(0, 3), length - 2), replace=False)
        pref[:, [0, length - 1, *extra]] = 1.0
    if kind == "block":
        cut = int(rng.integers(max(2, length // 3), max(3, length - 1))) if rng.random() < 0.7 else length
        pref[:cut, :cut] = 1.0
        pref[cut:, cut:] = 1.0
    return pref


def synthetic_map(kind: str, length: int, rng: np.random.Generator, noise: float = 0.6) -> np.ndarray:
    """One ``[length, length]`` row-stochastic map of pattern `kind`."""
    from scipy.special import softmax

    if kind not in PATTERNS:
        raise ValueError(f"`kind` must be one of {PATTERNS}; got {kind!r}.")
    if length < 4:
        raise ValueError(f"Maps need at least 4 tokens; got {length}.")
    if kind == "heterogeneous":
        rows = rng.dirichlet(np.full(length, rng.uniform(0.3, 1.5)), size=length)
        return (rows / rows.sum(axis=1, keepdims=True)).astype(np.float32)
    strength = rng.uniform(3.0, 6.0)
    logits = strength * _structure(kind, length, rng) + rng.normal(0.0, noise, size=(length, length))
    return softmax(logits, axis=1).astype(np.float32)


def generate_synthetic_maps(
    num_per_class: int, *, seed: int = 0, min_length: int = 8, max_length: int = 64, noise: float = 0.6
) -> tuple[list[np.ndarray], list[int]]:
    """`num_per_class` maps of each of the five types with lengths in [min_length, max_length]; (maps, label ids).

    Example:

    ```python
    >>> maps, labels = generate_synthetic_maps(10, seed=0)
    >>> len(maps), sorted(set(labels))
    (50, [0, 1, 2, 3, 4])

    ```
    """
    if num_per_class < 1:
        raise ValueError(f"`num_per_class` must be positive; got {num_per_class}.")
    if not 4 <= min_length <= max_length:
        raise ValueError(f"Need 4 <= min_length <= max_length; got {min_length}, {max_length}.")
    rng = np.random.default_rng(seed)
    maps, labels = [], []
    for _ in range(num_per_class):
        for index, kind in enumerate(PATTERNS):
            maps.append(synthetic_map(kind, int(rng.integers(min_length, max_length + 1)), rng, noise))
            labels.append(index)
    return maps, labels
