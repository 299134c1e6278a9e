"""How much the tickets of different seeds (or tasks) agree: Fleiss κ, Cochran's Q, Krippendorff α, IoU, Jaccard.

Heads are the subjects and seeds the raters, with two categories (kept / pruned) — 144 subjects × 5 raters for
bert-base and the paper's five seeds. statsmodels and krippendorff do the statistics.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ..tickets.ticket import LotteryTicket


MaskLike = LotteryTicket | tuple[Any, Any] | Any


def _as_masks(tickets: Sequence[MaskLike], least: int = 2) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]]:
    """Stack `least` or more raters' head masks ``[R, L*H]`` and MLP masks ``[R, L]`` (None when only head masks were
    given), and give the ``[L, H]`` shape."""
    heads, mlps, shapes2d = [], [], []
    for item in tickets:
        if isinstance(item, LotteryTicket):
            head, mlp = item.head_mask, item.mlp_mask
        elif isinstance(item, tuple) and len(item) == 2:
            head, mlp = item
        else:
            head, mlp = item, None
        head = torch.as_tensor(head)
        if head.ndim != 2:
            raise ValueError(f"Head masks must be [layers, heads]; got shape {tuple(head.shape)}.")
        shapes2d.append(tuple(head.shape))
        heads.append(head.bool().numpy().reshape(-1))
        mlps.append(None if mlp is None else torch.as_tensor(mlp).bool().numpy().reshape(-1))
    if len(heads) < least:
        raise ValueError(f"Agreement needs masks from at least {least} seeds (raters); got {len(heads)}.")
    if len(set(shapes2d)) != 1:
        raise ValueError(f"All head masks must have the same shape; got {sorted(set(shapes2d))}.")
    if any(m is None for m in mlps):
        return np.stack(heads), None, shapes2d[0]
    if len({m.shape for m in mlps}) != 1:
        raise ValueError("All MLP masks must have the same shape.")
    return np.stack(heads), np.stack(mlps), shapes2d[0]


def iou(masks: np.ndarray) -> float:
    """|kept by all| / |kept by any| over raters ``[R, N]``; 0 when nothing is kept by anyone."""
    union = masks.any(0).sum()
    return float(masks.all(0).sum() / union) if union else 0.0


def mean_pairwise_jaccard(masks: np.ndarray) -> float:
    """Mean Jaccard index of the kept sets over all pairs of raters (a pair keeping nothing counts as 0)."""
    return float(np.mean([iou(masks[[i, j]]) for i, j in itertools.combinations(range(len(masks)), 2)]))


def fleiss_and_cochran(masks: np.ndarray) -> tuple[float, float, float]:
    """Fleiss κ, and Cochran's Q (statistic, p-value) with heads as the blocks and seeds as the treatments."""
    from statsmodels.stats.contingency_tables import cochrans_q
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    ratings = masks.T.astype(int)  # subjects × raters
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = fleiss_kappa(aggregate_raters(ratings, n_cat=2)[0])
        q = cochrans_q(ratings)
    return float(kappa), float(q.statistic), float(q.pvalue)


def krippendorff_alpha(masks: np.ndarray) -> float | None:
    """Nominal Krippendorff α; None when every rating is the same (α is undefined without two values)."""
    import krippendorff

    if len(np.unique(masks)) < 2:
        return None
    return float(krippendorff.alpha(reliability_data=masks.astype(int), level_of_measurement="nominal"))


@dataclass(frozen=True)
class Agreement:
    """Agreement of several seeds' tickets (see `mask_agreement`)."""

    num_raters: int
    heads_kept: list[int]
    mlps_kept: list[int] | None
    fleiss_kappa: float
    cochrans_q: float
    cochrans_q_pvalue: float
    iou: float
    mean_pairwise_jaccard: float
    heads_kept_in_all: int
    mlps_kept_in_all: int | None
    krippendorff_alpha_mlp: float | None
    krippendorff_alpha_heads: float | None
    survivor_head_mask: list[list[bool]] = field(repr=False)
    survivor_mlp_mask: list[bool] | None = field(repr=False)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mask_agreement(tickets: Sequence[MaskLike]) -> Agreement:
    """Fleiss κ and Cochran's Q over heads, Krippendorff α over MLPs (and heads), IoU, mean pairwise Jaccard, and the
    heads / MLPs kept in every seed.

    Args:
        tickets: `LotteryTicket`s, ``(head_mask, mlp_mask)`` pairs, or bare ``[L, H]`` head masks — one per seed.

    Example:

    ```python
    >>> masks = [torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0]]), torch.tensor([[1, 1, 0, 1], [1, 0, 0, 0]]),
    ...          torch.tensor([[1, 0, 0, 0], [1, 0, 1, 1]])]
    >>> result = mask_agreement(masks)
    >>> result.heads_kept_in_all, round(result.iou, 2)
    (2, 0.33)

    ```
    """
    heads, mlps, shape = _as_masks(tickets)
    kappa, statistic, pvalue = fleiss_and_cochran(heads)
    notes = []
    if heads.sum(1).min() == 0:
        notes.append("at least one seed keeps no head (a degenerate stop rule?)")
    alpha_mlp = None if mlps is None else krippendorff_alpha(mlps)
    if mlps is not None and alpha_mlp is None:
        notes.append("Krippendorff's alpha of the MLPs is undefined: every seed made the same choice for every MLP")
    return Agreement(
        num_raters=len(heads),
        heads_kept=heads.sum(1).astype(int).tolist(),
        mlps_kept=None if mlps is None else mlps.sum(1).astype(int).tolist(),
        fleiss_kappa=kappa,
        cochrans_q=statistic,
        cochrans_q_pvalue=pvalue,
        iou=iou(heads),
        mean_pairwise_jaccard=mean_pairwise_jaccard(heads),
        heads_kept_in_all=int(heads.all(0).sum()),
        mlps_kept_in_all=None if mlps is None else int(mlps.all(0).sum()),
        krippendorff_alpha_mlp=alpha_mlp,
        krippendorff_alpha_heads=krippendorff_alpha(heads),
        survivor_head_mask=heads.all(0).reshape(shape).tolist(),
        survivor_mlp_mask=None if mlps is None else mlps.all(0).tolist(),
        notes=notes,
    )


def task_overlap(tickets_by_task: Mapping[str, Sequence[MaskLike]]) -> dict[str, dict[str, float | int]]:
    """Overlap across tasks of the heads kept in all seeds (one or more) of each task.

    For each pair of tasks ``"A/B"``: ``shared`` = heads surviving in every seed of both tasks, ``jaccard`` =
    shared / heads surviving in all seeds of either task (0 when neither has survivors).
    """
    survivors = {task: _as_masks(tickets, 1)[0].all(0) for task, tickets in tickets_by_task.items()}
    result = {}
    for a, b in itertools.combinations(sorted(survivors), 2):
        if survivors[a].shape != survivors[b].shape:
            raise ValueError(f"Tasks {a} and {b} have masks of different shapes.")
        both = np.stack([survivors[a], survivors[b]])
        result[f"{a}/{b}"] = {"shared": int(both.all(0).sum()), "jaccard": iou(both)}
    return result


def agreement_table(results_by_task: Mapping[str, Agreement]) -> str:
    """A Markdown table of the statistics, one row per task (columns as in the paper's notebooks)."""
    lines = [
        "| task | heads kept per seed | Fleiss κ | IoU of seeds | mean pairwise Jaccard | heads kept in all | "
        "MLPs kept in all | Krippendorff α (MLPs) | Cochran's Q p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task, r in results_by_task.items():
        alpha = "undefined" if r.krippendorff_alpha_mlp is None else f"{r.krippendorff_alpha_mlp:.2f}"
        mlps = "–" if r.mlps_kept_in_all is None else str(r.mlps_kept_in_all)
        p = f"{r.cochrans_q_pvalue:{'.2g' if r.cochrans_q_pvalue < 0.001 else '.3f'}}"
        lines.append(
            f"| {task} | {', '.join(map(str, r.heads_kept))} | {r.fleiss_kappa:.2f} | {r.iou:.2f} | "
            f"{r.mean_pairwise_jaccard:.2f} | {r.heads_kept_in_all} | {mlps} | {alpha} | {p} |"
        )
    notes = [f"- {task}: {note}" for task, r in results_by_task.items() for note in r.notes]
    return "\n".join(lines + ([""] + notes if notes else []))
