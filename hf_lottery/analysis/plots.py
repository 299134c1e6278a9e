"""PNG plots of tickets: head and MLP survival (one ticket: kept / pruned; several: share of tickets), magnitude
survival as the share of surviving weights per head and per tensor, and importance heatmaps.

Each function writes the file atomically and returns its path; the plotted numbers come from the ``*_matrix`` /
``*_vector`` helpers, titles from `describe`. matplotlib is optional: ``pip install "hf-lottery[plots]"``.

Example:

```python
>>> import tempfile, torch
>>> from hf_lottery import LotteryTicket
>>> ticket = LotteryTicket(head_mask=torch.tensor([[1, 0], [1, 1]]), mlp_mask=torch.tensor([1, 0]), task="sst2")
>>> plot_head_survival(ticket, tempfile.mkdtemp() + "/heads.png").name
'heads.png'

```
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path
from ..structure import ATTENTION_OUTPUT, INTERMEDIATE, KEY, MLP_OUTPUT, QUERY, VALUE
from ..tickets.ticket import LotteryTicket


TENSORS = (("Q", QUERY), ("K", KEY), ("V", VALUE), ("attn out", ATTENTION_OUTPUT), ("MLP in", INTERMEDIATE),
           ("MLP out", MLP_OUTPUT))  # fmt: skip
KEPT, PRUNED = "#2b6cb0", "#d9d9d9"
STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
         "legend.fontsize": 9, "figure.titlesize": 11}  # fmt: skip


def pyplot():
    """matplotlib's pyplot on the Agg backend (files, no display), or an ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError('Plots need matplotlib: pip install "hf-lottery[plots]"') from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def plot_style():
    """The house style of every hf-lottery figure, for a `with` block that yields pyplot."""
    plt = pyplot()
    with plt.rc_context(STYLE):
        yield plt


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save `fig` as a PNG at `path` atomically and close it."""
    plt = pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    return path


def _tickets(items: Any) -> list[Any]:
    if isinstance(items, LotteryTicket) or (isinstance(items, (torch.Tensor, np.ndarray)) and np.ndim(items) == 2):
        return [items]
    return list(items)


def _short_model(name: str | None) -> str | None:
    if not name:
        return None
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", name) and not os.path.exists(name):
        return name
    return Path(name).name or None  # a local folder: its name, never the full path


def describe(items: Any, task: str | None = None, model: str | None = None) -> str:
    """``"SST-2, bert-base-uncased, 3 seeds"``: what a plot of `items` shows, for its title (known parts only)."""
    tickets = [t for t in _tickets(items) if isinstance(t, LotteryTicket)]
    if task is None:
        tasks = {t.task for t in tickets if t.task}
        task = tasks.pop() if len(tasks) == 1 else None
    if model is None:
        models = {_short_model(t.base_model) for t in tickets if t.base_model}
        model = models.pop() if len(models) == 1 else None
    count = len(_tickets(items))
    seeds = [t.seed for t in tickets if t.seed is not None]
    if count == 1:
        runs = f"seed {seeds[0]}" if seeds else "one ticket"
    else:
        runs = f"{count} seeds" if len(set(seeds)) == count else f"{count} tickets"
    return ", ".join(part for part in (task, model, runs) if part)


def _stack(items: Any, attr: str, ndim: int) -> np.ndarray:
    """``[S, ...]`` float array of one mask, a list of masks, or the `attr` masks of a list of tickets."""
    masks = [
        np.asarray(getattr(t, attr) if isinstance(t, LotteryTicket) else torch.as_tensor(t), dtype=np.float64)
        for t in _tickets(items)
    ]
    shapes = sorted({m.shape for m in masks})
    if len(shapes) != 1 or len(shapes[0]) != ndim:
        raise ValueError(f"Masks to plot (`{attr}`) must have one shape of {ndim} dimensions; got shapes {shapes}.")
    return np.stack(masks)


def head_survival_matrix(items: Any, statistic: str = "mean") -> np.ndarray:
    """Share of tickets keeping each head (``mean``) or its standard deviation across tickets (``std``)."""
    masks = _stack(items, "head_mask", 2)
    if statistic not in ("mean", "std"):
        raise ValueError(f"`statistic` must be 'mean' or 'std'; got {statistic!r}.")
    return getattr(masks, statistic)(0)


def _legend(ax) -> None:
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=KEPT, label="kept"), Patch(color=PRUNED, label="pruned")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # fmt: skip


def _heatmap(matrix: np.ndarray, path: str | os.PathLike, title: str, label: str | None, vmax: float | None = 1.0,
             xlabel: str = "head", xlabels: Sequence[str] | None = None) -> Path:  # fmt: skip
    """Layers × columns with each value written in its cell and a colour bar named `label`; `label=None`: one
    ticket's yes/no mask in two colours with a legend."""
    with plot_style() as plt:
        from matplotlib.colors import ListedColormap

        rows, cols = matrix.shape
        width = 0.6 * cols + 2 if label else 0.5 * cols + 2.2
        fig, ax = plt.subplots(figsize=(max(4.0, width), max(2.6, 0.42 * rows + 1.4)), dpi=120)
        cmap = "viridis" if label else ListedColormap([PRUNED, KEPT])
        image = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(cols), list(xlabels) if xlabels else [str(c + 1) for c in range(cols)])
        ax.set_yticks(range(rows), [str(r + 1) for r in range(rows)])
        ax.set(xlabel=xlabel, ylabel="layer", title=title)
        if label is None:
            _legend(ax)
            return save_figure(fig, path)
        high = vmax or (np.nanmax(matrix) if matrix.size else 1.0) or 1.0
        for (row, col), value in np.ndenumerate(matrix):
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=9,
                    color="black" if value > 0.6 * high else "white")  # fmt: skip
        fig.colorbar(image, ax=ax, label=label, fraction=0.05, pad=0.02)
        return save_figure(fig, path)


def plot_head_survival(
    head_masks: torch.Tensor | Sequence[torch.Tensor] | Sequence[LotteryTicket], path: str | os.PathLike,
    title: str | None = None, *, task: str | None = None, model: str | None = None,
    label: str = "share of tickets keeping the head",
) -> Path:  # fmt: skip
    """One ticket: its kept / pruned heads (layers × heads); several: the share of them keeping each head (`label`)."""
    matrix = head_survival_matrix(head_masks, "mean")
    what = describe(head_masks, task, model)
    if len(_tickets(head_masks)) == 1:
        return _heatmap(matrix, path, title or f"Heads kept ({int(matrix.sum())}/{matrix.size}) — {what}", None)
    return _heatmap(matrix, path, title or f"Head survival — {what}", label)


def plot_head_survival_std(
    items: Sequence[Any], path: str | os.PathLike, title: str | None = None, *, task: str | None = None,
    model: str | None = None,
) -> Path:  # fmt: skip
    """Heatmap of the standard deviation of head survival across tickets (0: all seeds agree)."""
    matrix = head_survival_matrix(items, "std")
    default = f"Head survival, std across tickets — {describe(items, task, model)}"
    return _heatmap(matrix, path, title or default, "standard deviation", 0.5)


def mlp_survival_vector(items: Sequence[Any]) -> np.ndarray:
    """Share of tickets keeping each layer's MLP."""
    return _stack(items, "mlp_mask", 1).mean(0)


def plot_mlp_survival(
    items: Sequence[Any], path: str | os.PathLike, title: str | None = None, *, task: str | None = None,
    model: str | None = None,
) -> Path:  # fmt: skip
    """Bars per layer: one ticket: kept / pruned; several: the share of tickets keeping the layer's MLP."""
    values = mlp_survival_vector(items)
    what = describe(items, task, model)
    with plot_style() as plt:
        fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(values) + 2), 2.8), dpi=120)
        x = np.arange(1, len(values) + 1)
        if len(_tickets(items)) == 1:
            ax.bar(x, np.ones_like(values), color=[KEPT if v else PRUNED for v in values], edgecolor="#555555")
            ax.set_yticks([])
            _legend(ax)
            default = f"MLPs kept ({int(values.sum())}/{len(values)}) — {what}"
        else:
            ax.bar(x, values, color=KEPT)
            ax.set_ylim(0, 1.1)
            ax.set_ylabel("share of tickets")
            for xi, value in zip(x, values):
                ax.text(xi, value + 0.02, f"{value:.2f}", ha="center", fontsize=9)
            default = f"MLP survival — {what}"
        if not values.any():
            ax.text(0.5, 0.5, "all MLPs pruned", transform=ax.transAxes, ha="center", va="center", fontsize=12,
                    bbox={"facecolor": "white", "edgecolor": "#555555"})  # fmt: skip
        ax.set(xticks=x, xlabel="layer", title=title or default)
        return save_figure(fig, path)


def _dims(ticket: LotteryTicket) -> dict[str, int]:
    if ticket.model_dims is None:
        raise ValueError("Weight-survival plots need tickets with `model_dims` (LotteryTicket.full(model) sets them).")
    return ticket.model_dims


def _kept_weights(ticket: LotteryTicket, layer: int, path: str, shape: tuple[int, int]) -> torch.Tensor:
    name = f"layer.{layer}.{path}.weight"
    mask, structural = ticket.weight_masks.get(name), ticket.structural_mask(name)
    return (structural if mask is None else (mask & structural)).expand(shape).double()


def qkv_survival_matrices(tickets: Sequence[LotteryTicket]) -> dict[str, np.ndarray]:
    """For magnitude tickets: per layer and head, the share of the head's weights that survive, mean over tickets.

    Keys ``query`` / ``key`` / ``value`` (the head's rows), ``output`` (its attention-output columns) and ``head``
    (all four together). A head's share counts single weights, not rows.
    """
    tickets = _tickets(tickets)
    if not tickets:
        raise ValueError("No tickets to plot.")
    per_ticket = []
    for ticket in tickets:
        if not ticket.weight_masks:
            raise ValueError("Ticket has no weight masks; is it a magnitude ticket?")
        dims = _dims(ticket)
        heads, rows, hidden = dims["num_heads"], dims["num_heads"] * dims["head_size"], dims["hidden_size"]
        shares = {}
        for part, path in {"query": QUERY, "key": KEY, "value": VALUE, "output": ATTENTION_OUTPUT}.items():
            shape = (hidden, rows) if part == "output" else (rows, hidden)
            kept = [_kept_weights(ticket, layer, path, shape) for layer in range(ticket.num_layers)]
            kept = [k.T for k in kept] if part == "output" else kept  # a head's columns become its rows
            shares[part] = np.stack([k.reshape(heads, -1).mean(1).numpy() for k in kept])
        shares["head"] = np.mean(list(shares.values()), axis=0)
        per_ticket.append(shares)
    return {part: np.mean([shares[part] for shares in per_ticket], axis=0) for part in per_ticket[0]}


def tensor_survival_matrix(tickets: Sequence[LotteryTicket] | LotteryTicket) -> np.ndarray:
    """``[layers, 6]``: the share of each weight matrix (Q, K, V, attention output, MLP in, MLP out) kept."""
    tickets = _tickets(tickets)
    if not tickets:
        raise ValueError("No tickets to plot.")
    rows = []
    for ticket in tickets:
        dims = _dims(ticket)
        heads, hidden, inter = dims["num_heads"] * dims["head_size"], dims["hidden_size"], dims["intermediate_size"]
        shapes = [(heads, hidden)] * 3 + [(hidden, heads), (inter, hidden), (hidden, inter)]
        rows.append([[float(_kept_weights(ticket, layer, path, shape).mean())
                      for (_, path), shape in zip(TENSORS, shapes)] for layer in range(ticket.num_layers)])  # fmt: skip
    return np.asarray(rows).mean(0)


def plot_magnitude_qkv_survival(
    tickets: Sequence[LotteryTicket], path: str | os.PathLike, title: str | None = None, *,
    task: str | None = None, model: str | None = None,
) -> Path:  # fmt: skip
    """Four heatmaps (Q, K, V rows and attention-output columns of each head): the share of its weights kept."""
    matrices = qkv_survival_matrices(tickets)
    layers, heads = matrices["query"].shape
    names = {"query": "Q rows", "key": "K rows", "value": "V rows", "output": "attention-output columns"}
    with plot_style() as plt:
        width, height = max(3.2, 0.4 * heads + 1.2), max(2.2, 0.35 * layers + 1.0)
        fig, axes = plt.subplots(2, 2, figsize=(2 * width + 1.2, 2 * height + 0.6), dpi=120, sharex=True,
                                 sharey=True, layout="constrained")  # fmt: skip
        step = 1 if heads <= 12 else 2
        for ax, (part, label) in zip(axes.flat, names.items()):
            image = ax.imshow(matrices[part], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_xticks(range(0, heads, step), [str(h + 1) for h in range(0, heads, step)])
            ax.set_yticks(range(layers), [str(layer + 1) for layer in range(layers)])
            ax.set(title=label, xlabel="head", ylabel="layer")
            ax.label_outer()  # axis labels on the bottom row and the left column only
        fig.colorbar(image, ax=axes, label="share of the head's weights kept", fraction=0.04, pad=0.02)
        fig.suptitle(title or f"Weights kept per head — {describe(tickets, task, model)}")
        return save_figure(fig, path)


def plot_tensor_survival(
    tickets: Sequence[LotteryTicket] | LotteryTicket, path: str | os.PathLike, title: str | None = None, *,
    task: str | None = None, model: str | None = None,
) -> Path:  # fmt: skip
    """Heatmap layers × weight matrices: the share of each matrix's weights kept (mean over tickets)."""
    matrix = tensor_survival_matrix(tickets)
    default = f"Weights kept per tensor — {describe(tickets, task, model)}"
    return _heatmap(matrix, path, title or default, "share of weights kept", xlabel="weight matrix",
                    xlabels=[name for name, _ in TENSORS])  # fmt: skip


def plot_importance(
    ticket: LotteryTicket, path: str | os.PathLike, title: str | None = None, *, task: str | None = None,
    model: str | None = None,
) -> Path:  # fmt: skip
    """Heatmap of a ticket's head importance scores (normalised as the search used them)."""
    if ticket.head_importance is None:
        raise ValueError("This ticket carries no head_importance scores.")
    matrix = ticket.head_importance.double().numpy()
    return _heatmap(matrix, path, title or f"Head importance — {describe(ticket, task, model)}", "importance", None)


def plot_ticket(ticket: LotteryTicket, folder: str | os.PathLike) -> list[Path]:
    """A model card's plots of one ticket: heads and MLPs kept; magnitude: weights kept per tensor and per head."""
    folder = Path(folder)
    if ticket.method == "magnitude" and ticket.weight_masks and ticket.model_dims is not None:
        return [plot_tensor_survival(ticket, folder / "tensor_survival.png"),
                plot_magnitude_qkv_survival([ticket], folder / "head_weight_survival.png")]  # fmt: skip
    return [plot_head_survival(ticket, folder / "head_survival.png"),
            plot_mlp_survival([ticket], folder / "mlp_survival.png")]  # fmt: skip
