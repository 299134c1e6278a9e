"""Bad inputs to the ticket searches (`find_structured_ticket`, `find_magnitude_ticket`, `compute_importance`)."""

from __future__ import annotations

import torch

from hf_lottery import TicketSearchConfig, compute_importance, find_magnitude_ticket, find_structured_ticket
from hf_lottery.tasks.metrics import resolve_search_metric

from ..conftest import tiny_batch, tiny_bert
from . import BadInput


def _structured(data=None, metric="sst2", **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("on_degenerate", "ignore")
    kwargs.setdefault("structured_max_steps", 1)
    return lambda tmp_path: find_structured_ticket(tiny_bert(), [tiny_batch()] if data is None else data, metric,
                                                   **kwargs)  # fmt: skip


def _labels(values):
    batch = tiny_batch(batch_size=len(values))
    batch["labels"] = torch.tensor(values)
    return [batch]


def _resume_with(first: dict, second: dict):
    def call(tmp_path):
        _structured(output_dir=tmp_path, **first)(tmp_path)
        _structured(output_dir=tmp_path, **second)(tmp_path)

    return call


def _torn_state(tmp_path):
    _structured(output_dir=tmp_path)(tmp_path)
    (tmp_path / "ticket_config.json").write_text("{not json")
    _structured(output_dir=tmp_path)(tmp_path)


CASES = [
    BadInput(
        "search-metric-unknown-task", "search", _structured(metric="squad"), ValueError, r"'squad'; choose one of"
    ),
    BadInput(
        "search-metric-wrong-type", "search", _structured(metric=42), TypeError, r"`metric` must be a GLUE task name"
    ),
    BadInput("search-empty-dataloader", "search", _structured(data=[]), ValueError, r"no batches"),
    BadInput(
        "search-batches-without-labels",
        "search",
        _structured(data=[{"input_ids": torch.ones(2, 3, dtype=torch.long)}]),
        ValueError,
        r"need a `labels` tensor",
    ),  # fmt: skip
    BadInput(
        "search-batches-as-tuples",
        "search",
        _structured(data=[(torch.ones(2, 3, dtype=torch.long),)]),
        TypeError,
        r"dicts of tensors",
    ),  # fmt: skip
    BadInput(
        "search-label-too-large",
        "search",
        _structured(data=_labels([0, 1, 5])),
        ValueError,
        r"label 5, outside \[0, 2\): the model has num_labels=2",
    ),  # fmt: skip
    BadInput(
        "search-label-negative",
        "search",
        _structured(data=_labels([-1, 1])),
        ValueError,
        r"label -1, outside \[0, 2\)",
    ),
    BadInput(
        "search-magnitude-label-too-large",
        "search",
        lambda tmp_path: find_magnitude_ticket(tiny_bert(), _labels([3, 0]), "sst2", progress=False),
        ValueError,
        r"label 3, outside \[0, 2\)",
    ),  # fmt: skip
    BadInput(
        "search-resume-other-threshold",
        "search",
        _resume_with({}, {"threshold": 0.8}),
        ValueError,
        r"other settings \(threshold: 0\.9 -> 0\.8\)",
    ),  # fmt: skip
    BadInput(
        "search-resume-other-importance",
        "search",
        _resume_with({}, {"importance": "fisher"}),
        ValueError,
        r"importance: 'gradient' -> 'fisher'",
    ),  # fmt: skip
    BadInput("search-resume-torn-state", "search", _torn_state, ValueError, r"cannot be read .*delete that folder"),
    BadInput(
        "search-config-plus-unknown-keyword",
        "search",
        _structured(config=TicketSearchConfig(), thresold=0.8),
        TypeError,
        r"Unknown search setting\(s\) \['thresold'\]",
    ),  # fmt: skip
    BadInput("search-old-max-steps-keyword", "search", _structured(max_steps=2), TypeError, r"\['max_steps'\]"),
    BadInput(
        "search-config-wrong-type",
        "search",
        _structured(config={"threshold": 0.8}),
        TypeError,
        r"`config` must be a TicketSearchConfig; got dict",
    ),  # fmt: skip
    BadInput(
        "search-config-bad-value-via-keyword",
        "search",
        _structured(threshold=1.5),
        ValueError,
        r"`threshold` must be in \(0, 1\]",
    ),
    BadInput(
        "search-target-heads-above-model",
        "search",
        _structured(target_heads=99),
        ValueError,
        r"`target_heads` must be at most the model's 12; got 99",
    ),  # fmt: skip
    BadInput(
        "search-magnitude-target-heads",
        "search",
        lambda tmp_path: find_magnitude_ticket(tiny_bert(), [tiny_batch()], "sst2", target_heads=3),
        ValueError,
        r"`target_heads` applies to the structured search only",
    ),  # fmt: skip
    BadInput(
        "search-magnitude-unknown-parameter",
        "search",
        lambda tmp_path: find_magnitude_ticket(tiny_bert(), [tiny_batch()], "sst2", parameter_names=["nope"]),
        ValueError,
        r"`parameter_names` not in the encoder: \['nope'\]",
    ),  # fmt: skip
    BadInput(
        "search-fisher-with-paper-compat",
        "search",
        _structured(importance="fisher", paper_compat=True),
        ValueError,
        r"`paper_compat` must be False with importance='fisher'",
    ),  # fmt: skip
    BadInput(
        "search-importance-typo",
        "search",
        lambda tmp_path: compute_importance(tiny_bert(), [tiny_batch()], importance="fischer"),
        ValueError,
        r"`importance` must be 'gradient' or 'fisher'",
    ),  # fmt: skip
    BadInput(
        "search-compute-metrics-without-key",
        "search",
        lambda tmp_path: resolve_search_metric(compute_metrics=lambda ep: {}),
        ValueError,
        r"`metric_key`",
    ),  # fmt: skip
    BadInput(
        "search-no-metric-at-all", "search", lambda tmp_path: resolve_search_metric(), ValueError, r"needs a metric"
    ),  # fmt: skip
]
