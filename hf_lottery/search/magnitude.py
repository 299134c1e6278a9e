"""Iterative global magnitude pruning with the paper's 90 % stop rule (`find_magnitude_ticket`)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import torch
from torch import nn
from transformers.utils import logging

from ..evaluation import evaluate, manual_bar
from .state import history_entry, load_search_state, model_fingerprint, save_search_state
from .selection import select_global
from .stop_rule import StopRule, constant_predictor_score, resolve_metric, validate_threshold
from ..structure import EncoderStructure
from ..ticket import LotteryTicket


logger = logging.get_logger(__name__)


def find_magnitude_ticket(
    model: nn.Module,
    dataloader: Iterable,
    metric: Any,
    *,
    threshold: float = 0.9,
    prune_fraction: float = 0.1,
    max_steps: int = 10,
    search_data: str = "dev",
    output_dir: str | os.PathLike | None = None,
    on_degenerate: Literal["warn", "raise", "ignore"] = "warn",
    parameter_names: Sequence[str] | None = None,
    base_model: str | None = None,
    base_model_revision: str | None = None,
    task: str | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> LotteryTicket:
    """Find a magnitude lottery ticket: prune the globally smallest weights while ``metric ≥ threshold × full``.

    One global L1 ranking over the paper's weight set (every layer's Q/K/V weights and biases, attention output
    weight and bias, intermediate weight and bias, and MLP output weight; never embeddings, LayerNorms, pooler,
    classifier or the MLP output bias). Each step prunes `prune_fraction` of the weights still kept (sparsity after k
    steps ``1 − 0.9^k``), at most `max_steps` steps; the last mask that passes is kept (the paper's code discarded a
    10th passing step). One forward pass per step.

    Args:
        model: the fine-tuned classifier (its weights are restored after the search).
        dataloader: the search data; record its origin in `search_data` ("dev" / "held-out").
        metric: task name, metric object or callable ``(logits, labels) -> float``.
        output_dir: the ticket-so-far is written there after every step; a search found there is resumed.
        parameter_names: override the weight set (names relative to the encoder); default: the paper's.

    Example:

    ```python
    >>> ticket = find_magnitude_ticket(model, dev_loader, "sst2", base_model="bert-base-uncased")  # doctest: +SKIP
    >>> round(ticket.sparsity, 3)
    0.651

    ```
    """
    threshold = validate_threshold(threshold)
    if not 0 < prune_fraction < 1:
        raise ValueError(f"`prune_fraction` must be in (0, 1) (the paper uses 0.1); got {prune_fraction!r}.")
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"`max_steps` must be a positive integer (the paper uses 10); got {max_steps!r}.")
    started = time.perf_counter()
    structure = EncoderStructure(model)
    params = _weight_set(structure, parameter_names)
    metric_fn = resolve_metric(metric)
    ticket = load_search_state(output_dir, model, "magnitude")
    with _restoring(params) as original:
        if ticket is None:
            ticket = _start(model, structure, params, dataloader, metric, metric_fn, threshold, on_degenerate)
            ticket = ticket.copy(
                base_model=base_model or ticket.base_model,
                base_model_revision=base_model_revision,
                task=task,
                seed=seed,
                search_data=search_data,
            )
            ticket.extra["search"].update(prune_fraction=prune_fraction, max_steps=max_steps)
            save_search_state(ticket, output_dir)
        state = ticket.extra["search"]
        rule = StopRule(threshold, ticket.metrics["full_metric"], ticket.metrics["constant_baseline"])
        bar = manual_bar("magnitude search", progress, total=max_steps)
        bar.update(len(ticket.history) - 1)
        steps_run = 0
        while not state["finished"]:
            steps_run += 1
            step = len(ticket.history)
            masks = _prune_step(original, ticket.weight_masks, prune_fraction)
            _load_masked(params, original, masks)
            result = evaluate(model, dataloader, metric, progress=False)
            passed = rule.passes(result.metric)
            candidate = ticket.copy(weight_masks=masks)
            ticket.history.append(
                history_entry(step, "magnitude", ticket.head_mask, ticket.mlp_mask, metric=result.metric,
                              accepted=passed, sparsity=candidate.sparsity)
            )  # fmt: skip
            if passed:
                history, ticket = ticket.history, candidate
                ticket.history = history
                ticket.metrics["metric"] = result.metric
            state["finished"] = not passed or step >= max_steps
            ticket.extra["search"] = state
            save_search_state(ticket, output_dir)
            bar.update(1)
            bar.set_postfix(sparsity=f"{candidate.sparsity:.3f}", metric=f"{result.metric:.4f}", ok=passed)
        bar.close()
    if steps_run:
        state["wall_time_s"] = state.get("wall_time_s", 0.0) + time.perf_counter() - started
        ticket.extra["search"] = state
        save_search_state(ticket, output_dir)
    logger.info(
        "Magnitude ticket: sparsity %.4f, metric %.4f (full %.4f, threshold %.4f).",
        ticket.sparsity, ticket.metrics["metric"], rule.full_metric, rule.threshold_value,
    )  # fmt: skip
    return ticket


def _weight_set(structure: EncoderStructure, names: Sequence[str] | None) -> dict[str, nn.Parameter]:
    all_params = structure.named_encoder_parameters()
    names = list(names) if names is not None else structure.magnitude_parameter_names()
    unknown = [n for n in names if n not in all_params]
    if unknown:
        raise ValueError(f"`parameter_names` not in the encoder: {unknown[:5]}; e.g. {list(all_params)[:3]}.")
    return {name: all_params[name] for name in names}


@contextlib.contextmanager
def _restoring(params: dict[str, nn.Parameter]) -> Iterator[dict[str, torch.Tensor]]:
    """Yield a copy of the weights; put them back afterwards, whatever happens."""
    original = {name: p.detach().clone() for name, p in params.items()}
    try:
        yield original
    finally:
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(original[name])


@torch.no_grad()
def _load_masked(params: dict[str, nn.Parameter], original: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]):
    for name, p in params.items():
        p.copy_(original[name] * masks[name].to(p.device, p.dtype))


def _prune_step(
    original: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], fraction: float
) -> dict[str, torch.Tensor]:
    """Prune `fraction` of the still-kept weights: the globally smallest |w| (Python rounding, like torch.prune)."""
    kept = {name: masks[name].to(original[name].device) for name in original}
    remaining = sum(int(m.sum()) for m in kept.values())
    count = round(fraction * remaining)
    magnitudes = {name: w.abs() for name, w in original.items()}
    pruned = select_global(magnitudes, kept, count)
    return {name: (kept[name] & ~pruned[name]).cpu() for name in original}


def _start(
    model: nn.Module,
    structure: EncoderStructure,
    params: dict[str, nn.Parameter],
    dataloader: Iterable,
    metric: Any,
    metric_fn: Any,
    threshold: float,
    on_degenerate: str,
) -> LotteryTicket:
    result = evaluate(model, dataloader, metric, progress=False)
    rule = StopRule(threshold, result.metric, constant_predictor_score(metric_fn, result.predictions, result.labels))
    rule.check(on_degenerate)
    masks = {name: torch.ones_like(p, dtype=torch.bool, device="cpu") for name, p in params.items()}
    ticket = LotteryTicket.full(structure, kind="good", method="magnitude").copy(weight_masks=masks)
    ticket.threshold = threshold
    ticket.metrics.update(
        full_metric=result.metric,
        metric=result.metric,
        constant_baseline=rule.constant_baseline,
        threshold_value=rule.threshold_value,
    )
    ticket.history = [
        history_entry(0, "full", ticket.head_mask, ticket.mlp_mask, metric=result.metric, accepted=True, sparsity=0.0)
    ]
    ticket.extra = {
        "degenerate_stop_rule": rule.degenerate,
        "search": {"finished": False, "model_fingerprint": model_fingerprint(model)},
    }
    return ticket
