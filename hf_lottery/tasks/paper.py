"""The paper's published figures (bert-base-uncased, GLUE dev, 5 seeds), shipped as ``paper_results.csv`` (source,
citation and settings in ``paper_results.md``): strings exactly as published, matched by task name."""

from __future__ import annotations

import csv
from pathlib import Path

from .glue import canonical_task_name, dev_split_name


PAPER_LABEL = "paper (BERT-base, 5 seeds)"
PAPER_MODEL = "bert-base-uncased"


def paper_results(task: str) -> dict[str, str]:
    """Setting -> the paper's figure for a task it covers (``paper_results("SST-2")["m good, re-FT"]`` is
    ``"0.92 ± 0.01"``; ``"mean"`` alone where it gives no std); ``{}`` for others (the demo task, users' data, MNLI
    mismatched: the paper reports matched)."""
    try:
        key = canonical_task_name(task) if dev_split_name(task) == "validation" else None
    except (TypeError, ValueError):
        return {}
    with open(Path(__file__).with_name("paper_results.csv"), encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["task"] == key]
    return {row["setting"]: " ± ".join(filter(None, (row["mean"], row["std"]))) for row in rows}
