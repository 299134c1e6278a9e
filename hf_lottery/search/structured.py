"""Iterative head + MLP importance pruning with the paper's 90 % stop rule (`find_structured_ticket`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch import nn
from transformers.utils import logging

from ..evaluation import evaluate, manual_bar
from ..gates import apply_ticket
from .importance import ImportanceResult, compute_importance
from .state import history_entry, load_search_state, model_fingerprint, save_search_state
from .selection import STRUCTURED_PHASES, heads_per_step, least_important, phase_step_sizes
from .stop_rule import StopRule, constant_predictor_score, resolve_metric, validate_threshold
from ..structure import EncoderStructure
from ..ticket import LotteryTicket


logger = logging.get_logger(__name__)
Scorer = Callable[[torch.Tensor, torch.Tensor], ImportanceResult]


def find_structured_ticket(
    model: nn.Module,
    dataloader: Iterable,
    metric: Any,
    *,
    threshold: float = 0.9,
    head_fraction: float = 0.1,
    search_data: str = "dev",
    output_dir: str | os.PathLike | None = None,
    on_degenerate: Literal["warn", "raise", "ignore"] = "warn",
    paper_compat: bool = False,
    passes_per_step: Literal[1, 2] = 1,
    max_steps: int | None = None,
    base_model: str | None = None,
    base_model_revision: str | None = None,
    task: str | None = None,
    seed: int | None = None,
    progress: bool = True,
    **importance_kwargs: Any,
) -> LotteryTicket:
    """Find a structured lottery ticket: mask heads and MLPs by importance while ``metric ≥ threshold × full``.

    Schedule (the paper's): each step masks, among the heads still kept, the least important ``10 %`` of *all*
    heads (`head_fraction`; 14 of 144 in bert-base) and the least important remaining MLP; when a step fails the
    stop rule, heads only at half that number; when that fails, one MLP per step. No retraining between steps; the
    last mask that passes is kept. One forward+backward pass per step measures the candidate mask and gives the
    importance for the next step (importance is always that of the last accepted mask).

    Args:
        model: the fine-tuned classifier.
        dataloader: the search data (importance + stop rule); the paper uses dev, a held-out slice of train is
            cleaner — say which in `search_data` ("dev" / "held-out" / free text), it is recorded.
        metric: task name ("sst2", "cola", ...), metric object, or callable ``(logits, labels) -> float``.
        threshold: the stop rule's fraction of the full model's metric.
        output_dir: folder where the ticket-so-far is written after every step; a search found there is resumed
            (or returned, when finished).
        on_degenerate: what to do when ``threshold × full`` is at or below the constant-predictor score.
        paper_compat: reproduce the paper code's quirks (cumulative gate gradient; after a failed step, the next
            phase ranks by the failed mask's importance).
        passes_per_step: 2 runs the paper's costlier scheme (an evaluation forward, then a forward+backward with
            weight gradients) — a reference for benchmarks; it finds the identical ticket.
        max_steps: stop after this many masking steps (None: until every phase fails or runs out).
        base_model / base_model_revision: the *pre-trained* model the ticket rewinds to (recorded in the ticket).
        importance_kwargs: normalisation switches of `compute_importance`.

    Example:

    ```python
    >>> ticket = find_structured_ticket(model, dev_loader, "mrpc", base_model="bert-base-uncased")  # doctest: +SKIP
    >>> ticket.summary()["kept_heads"], ticket.metrics["metric"] >= 0.9 * ticket.metrics["full_metric"]
    (88, True)
    ```
    """
    threshold = validate_threshold(threshold)
    started = time.perf_counter()
    structure = EncoderStructure(model)
    metric_fn = resolve_metric(metric)
    scorer = _make_scorer(model, dataloader, metric, passes_per_step, paper_compat, importance_kwargs)
    ticket = load_search_state(output_dir, model, "structured")
    if ticket is None:
        ticket = _start(model, structure, scorer, metric_fn, threshold, on_degenerate, output_dir)
        ticket = ticket.copy(
            base_model=base_model or ticket.base_model,
            base_model_revision=base_model_revision,
            task=task,
            seed=seed,
            search_data=search_data,
        )
        ticket.extra["search"].update(
            head_step=heads_per_step(structure.num_layers, structure.num_heads, head_fraction),
            paper_compat=paper_compat,
            passes_per_step=passes_per_step,
        )
        save_search_state(ticket, output_dir)
    state = ticket.extra["search"]
    if state["finished"]:
        return ticket
    rule = StopRule(threshold, ticket.metrics["full_metric"], ticket.metrics["constant_baseline"])
    sizes = phase_step_sizes(state["head_step"])
    steps_run = 0
    bar = manual_bar("structured search", progress)
    while state["phase"] < len(STRUCTURED_PHASES) and (max_steps is None or steps_run < max_steps):
        phase = STRUCTURED_PHASES[state["phase"]]
        candidate = _candidate(ticket, *sizes[phase])
        if candidate is None:  # nothing left to mask in this phase
            state["phase"] += 1
            continue
        head, mlp = candidate
        result = scorer(head, mlp)
        passed = rule.passes(result.metric)
        ticket.history.append(
            history_entry(
                len(ticket.history), phase, head, mlp, metric=result.metric, accepted=passed,
                masked_heads=torch.nonzero(ticket.head_mask & ~head).tolist(),
                masked_mlps=torch.nonzero(ticket.mlp_mask & ~mlp).flatten().tolist(),
            )
        )  # fmt: skip
        if passed:
            ticket = _accept(ticket, head, mlp, result)
        else:
            state["phase"] += 1
            if paper_compat:
                ticket = ticket.copy(head_importance=result.head_importance, mlp_importance=result.mlp_importance)
        ticket.extra["search"] = state
        steps_run += 1
        _report(bar, ticket, result.metric, passed, rule)
        save_search_state(ticket, output_dir)
    bar.close()
    state["finished"] = state["phase"] >= len(STRUCTURED_PHASES)
    state["wall_time_s"] = state.get("wall_time_s", 0.0) + time.perf_counter() - started
    ticket.extra["search"] = state
    save_search_state(ticket, output_dir)
    summary = ticket.summary()
    logger.info(
        "Structured ticket: %d/%d heads, %d/%d MLPs, metric %.4f (full %.4f, threshold %.4f).",
        summary["kept_heads"], summary["total_heads"], summary["kept_mlps"], summary["total_mlps"],
        ticket.metrics["metric"], rule.full_metric, rule.threshold_value,
    )  # fmt: skip
    return ticket


def _make_scorer(
    model: nn.Module, dataloader: Iterable, metric: Any, passes: int, paper_compat: bool, kwargs: dict[str, Any]
) -> Scorer:
    if passes not in (1, 2):
        raise ValueError(f"`passes_per_step` must be 1 (one forward+backward) or 2 (paper's scheme); got {passes}.")

    def one_pass(head: torch.Tensor, mlp: torch.Tensor) -> ImportanceResult:
        return compute_importance(
            model, dataloader, metric=metric, head_mask=head, mlp_mask=mlp, paper_compat=paper_compat,
            progress=False, **kwargs,
        )  # fmt: skip

    def two_passes(head: torch.Tensor, mlp: torch.Tensor) -> ImportanceResult:
        ticket = LotteryTicket(head_mask=head, mlp_mask=mlp, kind="custom")
        with apply_ticket(model, ticket):
            evaluated = evaluate(model, dataloader, metric, progress=False)
        result = compute_importance(
            model, dataloader, metric=None, head_mask=head, mlp_mask=mlp, paper_compat=paper_compat,
            progress=False, weight_gradients=True, **kwargs,
        )  # fmt: skip
        result.metric = evaluated.metric
        return result

    return one_pass if passes == 1 else two_passes


def _start(
    model: nn.Module,
    structure: EncoderStructure,
    scorer: Scorer,
    metric_fn: Any,
    threshold: float,
    on_degenerate: str,
    output_dir: Any,
) -> LotteryTicket:
    full = LotteryTicket.full(structure, kind="good")
    result = scorer(full.head_mask, full.mlp_mask)
    rule = StopRule(threshold, result.metric, constant_predictor_score(metric_fn, result.predictions, result.labels))
    rule.check(on_degenerate)
    ticket = _accept(full, full.head_mask, full.mlp_mask, result)
    ticket.threshold = threshold
    ticket.metrics.update(full_metric=result.metric, constant_baseline=rule.constant_baseline)
    ticket.metrics["threshold_value"] = rule.threshold_value
    ticket.history = [history_entry(0, "full", full.head_mask, full.mlp_mask, metric=result.metric, accepted=True)]
    ticket.extra = {
        "degenerate_stop_rule": rule.degenerate,
        "search": {"phase": 0, "finished": False, "model_fingerprint": model_fingerprint(model)},
    }
    return ticket


def _candidate(ticket: LotteryTicket, n_heads: int, n_mlps: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    head_sel = least_important(ticket.head_importance, ticket.head_mask, n_heads)
    mlp_sel = least_important(ticket.mlp_importance, ticket.mlp_mask, n_mlps)
    if (n_heads and not head_sel.any()) or (n_mlps and not mlp_sel.any()):
        return None
    return ticket.head_mask & ~head_sel, ticket.mlp_mask & ~mlp_sel


def _accept(ticket: LotteryTicket, head: torch.Tensor, mlp: torch.Tensor, result: ImportanceResult) -> LotteryTicket:
    accepted = ticket.copy(
        head_mask=head, mlp_mask=mlp, head_importance=result.head_importance, mlp_importance=result.mlp_importance
    )
    accepted.metrics["metric"] = result.metric
    return accepted


def _report(bar: Any, ticket: LotteryTicket, metric: float, passed: bool, rule: StopRule) -> None:
    bar.update(1)
    bar.set_postfix(
        heads=int(ticket.head_mask.sum()), mlps=int(ticket.mlp_mask.sum()), metric=f"{metric:.4f}",
        need=f"{rule.threshold_value:.4f}", ok=passed,
    )  # fmt: skip
