"""PNG plots of tickets: head survival heatmaps (mean, std), MLP survival bars, magnitude Q/K/V row survival, and
importance heatmaps. Each function writes the file atomically and returns its path; the plotted numbers are
available from the `*_matrix` helpers. matplotlib is optional: ``pip install "hf-lottery[plots]"``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path
from ..ticket import LotteryTicket


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError('Plots need matplotlib: pip install "hf-lottery[plots]"') from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _head_masks(items: Any) -> np.ndarray:
    """``[S, L, H]`` float array from one mask, a list of masks, or a list of tickets."""
    if isinstance(items, LotteryTicket):
        items = [items]
    elif isinstance(items, (torch.Tensor, np.ndarray)) and np.asarray(items).ndim == 2:
        items = [items]
    masks = [
        np.asarray(item.head_mask if isinstance(item, LotteryTicket) else torch.as_tensor(item), dtype=np.float64)
        for item in items
    ]  # noqa: E501
    if not masks:
        raise ValueError("No masks to plot.")
    if len({m.shape for m in masks}) != 1 or masks[0].ndim != 2:
        raise ValueError(f"Head masks must all be [layers, heads]; got shapes {sorted({m.shape for m in masks})}.")
    return np.stack(masks)


def head_survival_matrix(items: Any, statistic: str = "mean") -> np.ndarray:
    """Share of tickets keeping each head (``mean``) or its standard deviation across tickets (``std``)."""
    masks = _head_masks(items)
    if statistic == "mean":
        return masks.mean(0)
    if statistic == "std":
        return masks.std(0)
    raise ValueError(f"`statistic` must be 'mean' or 'std'; got {statistic!r}.")


def _heatmap(
    matrix: np.ndarray, path: str | os.PathLike, title: str, label: str, fmt: str, vmax: float | None
) -> Path:
    plt = _pyplot()
    layers, heads = matrix.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * heads + 2), max(3.0, 0.45 * layers + 1.5)), dpi=120)
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(heads), [str(h + 1) for h in range(heads)])
    ax.set_yticks(range(layers), [str(layer + 1) for layer in range(layers)])
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title)
    high = np.nanmax(matrix) if matrix.size else 1.0
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, format(value, fmt), ha="center", va="center", fontsize=7,
                color="black" if value > 0.6 * (vmax or high or 1.0) else "white")  # fmt: skip
    fig.colorbar(image, ax=ax, label=label)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def plot_head_survival(
    head_masks: torch.Tensor | Sequence[torch.Tensor] | Sequence[LotteryTicket],
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Heatmap (layers × heads) of the share of tickets keeping each head; one mask gives a 0/1 map.

    Example:

    ```python
    >>> plot_head_survival([ticket_a, ticket_b, ticket_c], "head_survival.png")   # doctest: +SKIP
    ```
    """
    matrix = head_survival_matrix(head_masks, "mean")
    count = len(_head_masks(head_masks))
    default = "Heads kept" if count == 1 else f"Head survival across {count} tickets"
    return _heatmap(
        matrix, path, title or default, "share of tickets keeping the head", ".1f" if count > 1 else ".0f", 1.0
    )


def plot_head_survival_std(items: Sequence[Any], path: str | os.PathLike, title: str | None = None) -> Path:
    """Heatmap of the standard deviation of head survival across tickets (0: all seeds agree)."""
    matrix = head_survival_matrix(items, "std")
    return _heatmap(matrix, path, title or "Head survival, std across tickets", "standard deviation", ".2f", 0.5)


def mlp_survival_vector(items: Sequence[Any]) -> np.ndarray:
    masks = [
        np.asarray(t.mlp_mask if isinstance(t, LotteryTicket) else torch.as_tensor(t), dtype=np.float64) for t in items
    ]
    if not masks or len({m.shape for m in masks}) != 1:
        raise ValueError("Give MLP masks (or tickets) of one shape.")
    return np.stack(masks).mean(0)


def plot_mlp_survival(items: Sequence[Any], path: str | os.PathLike, title: str | None = None) -> Path:
    """Bars per layer: share of tickets keeping the layer's MLP."""
    plt = _pyplot()
    values = mlp_survival_vector(items)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(values) + 2), 3.0), dpi=120)
    ax.bar(range(1, len(values) + 1), values, color="#3b75af")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(range(1, len(values) + 1))
    ax.set_xlabel("layer")
    ax.set_ylabel("share of tickets keeping the MLP")
    ax.set_title(title or f"MLP survival across {len(items)} tickets")
    for x, value in enumerate(values, start=1):
        ax.text(x, value + 0.02, f"{value:.1f}", ha="center", fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def qkv_survival_matrices(tickets: Sequence[LotteryTicket]) -> dict[str, np.ndarray]:
    """For magnitude tickets: mean over tickets of the share of each head's Q / K / V weight rows that survive.

    A row survives when any of its weights is kept (a row with every weight pruned contributes nothing).
    """
    if not tickets:
        raise ValueError("No tickets to plot.")
    result = {}
    for part in ("query", "key", "value"):
        shares = []
        for ticket in tickets:
            if ticket.model_dims is None:
                raise ValueError("Magnitude Q/K/V plots need tickets with `model_dims`.")
            heads, size = ticket.num_heads, ticket.model_dims["head_size"]
            layers = []
            for layer in range(ticket.num_layers):
                mask = ticket.weight_masks.get(f"layer.{layer}.attention.self.{part}.weight")
                if mask is None:
                    raise ValueError(
                        f"Ticket has no weight mask for layer {layer}'s {part}; is it a magnitude ticket?"
                    )
                rows_alive = mask.any(dim=1).float().view(heads, size).mean(dim=1)
                layers.append(rows_alive.numpy())
            shares.append(np.stack(layers))
        result[part] = np.stack(shares).mean(0)
    return result


def plot_magnitude_qkv_survival(
    tickets: Sequence[LotteryTicket], path: str | os.PathLike, title: str | None = None
) -> Path:
    """Three heatmaps (Q, K, V): the share of each head's rows that keep at least one weight."""
    plt = _pyplot()
    matrices = qkv_survival_matrices(tickets)
    layers, heads = matrices["query"].shape
    fig, axes = plt.subplots(1, 3, figsize=(3 * max(3.5, 0.45 * heads + 1.5), max(3.0, 0.4 * layers + 1.5)), dpi=120)
    for ax, (part, matrix) in zip(axes, matrices.items()):
        image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_title({"query": "Q", "key": "K", "value": "V"}[part] + " rows surviving")
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(heads), [str(h + 1) for h in range(heads)], fontsize=6)
        ax.set_yticks(range(layers), [str(layer + 1) for layer in range(layers)], fontsize=6)
    fig.colorbar(image, ax=list(axes), label="share of rows with a surviving weight")
    fig.suptitle(title or f"Magnitude tickets ({len(tickets)}): surviving Q/K/V rows per head")
    return _save(fig, path)


def plot_importance(ticket: LotteryTicket, path: str | os.PathLike, title: str | None = None) -> Path:
    """Heatmap of a ticket's head importance scores (normalised as the search used them)."""
    if ticket.head_importance is None:
        raise ValueError("This ticket carries no head_importance scores.")
    matrix = ticket.head_importance.double().numpy()
    return _heatmap(matrix, path, title or "Head importance", "importance", ".2f", None)
