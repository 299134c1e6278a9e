"""Per-head pattern labels of a model, and the paper's question: are the surviving heads' patterns special?"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .classifier import PatternClassifier
from .extract import extract_attention_maps
from .labels import PATTERNS


@dataclass
class HeadPatterns:
    """``labels[l][h]``: the majority pattern of head h in layer l over the examples; ``shares[l, h, k]`` the share of
    examples classified as pattern k."""

    labels: list[list[str]]
    shares: np.ndarray
    num_examples: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shares": self.shares.tolist(), "patterns": list(PATTERNS)}


def predict_head_patterns(
    model: nn.Module,
    dataloader: Iterable,
    classifier: PatternClassifier | None = None,
    *,
    num_examples: int = 100,
    norm_based: bool = False,
    progress: bool = True,
) -> HeadPatterns:
    """Classify every head's map on each of `num_examples` examples and take a majority vote per head.

    Example:

    ```python
    >>> model = tiny_bert(vocab_size=50)
    >>> batch = {"input_ids": torch.tensor([[2, 7, 9, 3]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    >>> patterns = predict_head_patterns(model, [batch], num_examples=1, progress=False)
    >>> len(patterns.labels), len(patterns.labels[0]), patterns.labels[0][0] in PATTERNS
    (2, 4, True)

    ```
    """
    classifier = classifier or PatternClassifier.from_pretrained()
    maps = extract_attention_maps(
        model, dataloader, num_examples=num_examples, norm_based=norm_based, progress=progress
    )
    if not maps:
        raise ValueError("The dataloader yielded no examples to extract attention maps from.")
    predicted = [classifier.predict_proba(m.flatten(0, 1).numpy()).argmax(-1).reshape(m.shape[:2]) for m in maps]
    shares = np.eye(len(classifier.labels))[np.stack(predicted)].mean(0)  # [layers, heads, patterns]
    labels = [[classifier.labels[int(k)] for k in row] for row in shares.argmax(-1)]
    return HeadPatterns(labels=labels, shares=shares, num_examples=len(maps))


def _distribution(labels: Iterable[str]) -> dict[str, float]:
    labels = list(labels)
    return {p: labels.count(p) / len(labels) if labels else 0.0 for p in PATTERNS}


def pattern_survival_table(
    labels_by_task: Mapping[str, list[list[str]]], survivors_by_task: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Share of each pattern among heads kept in all seeds vs. among all heads, per task.

    Args:
        labels_by_task: per task, ``[layers][heads]`` pattern names (e.g. ``HeadPatterns.labels``).
        survivors_by_task: per task, a ``[layers, heads]`` bool mask of the heads kept in every seed (e.g.
            ``mask_agreement(tickets).survivor_head_mask``).
    """
    table = {}
    for task, labels in labels_by_task.items():
        survivors = torch.as_tensor(survivors_by_task[task]).bool()
        if tuple(survivors.shape) != (len(labels), len(labels[0])):
            raise ValueError(
                f"{task}: survivors mask {tuple(survivors.shape)} does not match labels {len(labels)}×{len(labels[0])}."
            )
        flat = [labels[layer][head] for layer in range(len(labels)) for head in range(len(labels[0]))]
        kept = [label for label, keep in zip(flat, survivors.flatten().tolist()) if keep]
        table[task] = {
            "all": _distribution(flat),
            "surviving": _distribution(kept),
            "num_heads": len(flat),
            "num_surviving": len(kept),
        }
    return table


def survival_markdown(table: Mapping[str, dict[str, Any]]) -> str:
    """Pattern shares of all heads and of the surviving ones, one row each (no row for an empty group).

    Example:

    ```python
    >>> row = {"num_heads": 2, "num_surviving": 0, "all": dict.fromkeys(PATTERNS, 0.5), "surviving": {}}
    >>> print(survival_markdown({"demo": row}).splitlines()[-1])
    | demo | all (2) | 50% | 50% | 50% | 50% | 50% |

    ```
    """
    lines = ["| task | heads | " + " | ".join(PATTERNS) + " |", "|---|---|" + "---|" * len(PATTERNS)]
    for task, row in table.items():
        for group in ("all", "surviving"):
            count = row["num_heads"] if group == "all" else row["num_surviving"]
            if not count:
                continue  # no head survived in every seed: no shares to show
            shares = " | ".join(f"{row[group][p]:.0%}" for p in PATTERNS)
            lines.append(f"| {task} | {group} ({count}) | {shares} |")
    return "\n".join(lines)


def plot_pattern_survival(table: Mapping[str, dict[str, Any]], path: str | os.PathLike) -> Path:
    """Grouped bars per task: pattern shares among all heads and among heads surviving in all seeds."""
    from ..analysis.plots import pyplot, save_figure

    fig, axes = pyplot().subplots(1, len(table), figsize=(5.5 * len(table), 3.6), dpi=120, squeeze=False)
    x = np.arange(len(PATTERNS))
    for ax, (task, row) in zip(axes[0], table.items()):
        ax.bar(x - 0.2, [row["all"][p] for p in PATTERNS], 0.4, label=f"all heads ({row['num_heads']})")
        if row["num_surviving"]:
            ax.bar(x + 0.2, [row["surviving"][p] for p in PATTERNS], 0.4,
                   label=f"kept in all seeds ({row['num_surviving']})")  # fmt: skip
        ax.set_xticks(x, PATTERNS, rotation=25, ha="right", fontsize=8)
        ax.set(ylim=(0, 1), ylabel="share of heads", title=task)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
