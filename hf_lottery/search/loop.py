"""The loop both ticket searches share: start or resume, score a candidate, apply the stop rule or the budget, log,
save the state, show a progress bar. A `SearchMethod` supplies only how to score, propose, accept and reject."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from torch import nn
from transformers.utils import logging

from ..config import TicketSearchConfig
from ..evaluation import progress_bar
from ..tasks.metrics import constant_predictor_score, metric_name, resolve_metric, task_of_metric
from ..tickets.ticket import LotteryTicket
from .state import history_entry, load_search_state, model_fingerprint, save_search_state
from .stop_rule import StopRule


logger = logging.get_logger(__name__)


@dataclass
class Scored:
    """The metric of one pass over the search data, and what else the method computed in it (e.g. importance)."""

    metric: float
    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    payload: Any = None


@dataclass
class Proposal:
    """A candidate ticket, the phase it belongs to and the history fields it adds (e.g. ``{"masked_mlps": [1]}``)."""

    phase: str
    ticket: LotteryTicket
    record: dict[str, Any] = field(default_factory=dict)


class SearchMethod(Protocol):
    """What a search supplies to `run_search` (`StructuredSearch` and `MagnitudeSearch` are the two)."""

    name: str  # "structured" | "magnitude": the ticket's method

    def start(self) -> tuple[LotteryTicket, Scored]: ...  # the full ticket and its pass (with predictions)
    def propose(self, ticket: LotteryTicket, state: dict[str, Any]) -> Proposal | None: ...  # None: nothing left
    def score(self, proposal: Proposal) -> Scored: ...
    def accept(self, ticket: LotteryTicket, proposal: Proposal, scored: Scored) -> LotteryTicket: ...
    def reject(
        self, ticket: LotteryTicket, proposal: Proposal, scored: Scored, state: dict[str, Any]
    ) -> LotteryTicket: ...
    def total_steps(self, ticket: LotteryTicket) -> int | None: ...  # for the progress bar (an upper bound is fine)
    def max_steps(self) -> int | None: ...
    def describe(self, ticket: LotteryTicket) -> dict[str, Any]: ...  # progress-bar / log fields


def is_budget_search(config: TicketSearchConfig) -> bool:
    """True when a target (sparsity, heads or MLPs) replaces the paper's stop rule.

    ```python
    >>> is_budget_search(TicketSearchConfig()), is_budget_search(TicketSearchConfig(target_sparsity=0.5))
    (False, True)

    ```
    """
    return any(v is not None for v in (config.target_sparsity, config.target_heads, config.target_mlps))


@dataclass
class SearchMetadata:
    """What the caller says about the model and data, recorded in the ticket (a path is recorded as a string)."""

    base_model: str | os.PathLike | None = None
    base_model_revision: str | None = None
    task: str | None = None
    seed: int | None = None


def _start(
    method: SearchMethod, model: nn.Module, metric: Any, config: TicketSearchConfig, meta: SearchMetadata
) -> LotteryTicket:
    ticket, full = method.start()
    baseline = constant_predictor_score(resolve_metric(metric), full.predictions, full.labels)
    rule = StopRule(config.threshold, full.metric, baseline)
    if not is_budget_search(config):
        rule.check(config.on_degenerate)
    base_model = os.fspath(meta.base_model) if meta.base_model is not None else ticket.base_model
    if base_model is None:
        logger.warning(
            "The pre-trained model of this fine-tuned model is unknown (no `hf_lottery_base_model` in its config, and "
            "its `_name_or_path` names the fine-tuned checkpoint itself): the ticket records no base_model, and "
            "rewinding it will need one. Pass `base_model=` (`--base_model`: a Hub id or folder) to record it."
        )
    ticket = ticket.copy(
        kind="good", base_model=base_model, base_model_revision=meta.base_model_revision,
        task=meta.task or task_of_metric(metric), seed=meta.seed, threshold=config.threshold,
        search_data=config.search_data,
    )  # fmt: skip
    ticket.metrics.update(
        full_metric=full.metric, metric=full.metric, constant_baseline=baseline, threshold_value=rule.threshold_value
    )
    if (name := metric_name(metric)) is not None:
        ticket.metrics["metric_name"] = name
    ticket.history = [
        history_entry(0, "full", ticket.head_mask, ticket.mlp_mask, metric=full.metric, accepted=True,
                      sparsity=ticket.sparsity)
    ]  # fmt: skip
    ticket.extra = {
        "degenerate_stop_rule": rule.degenerate,
        "search_config": config.to_dict(),
        "search": {"phase": 0, "finished": False, "model_fingerprint": model_fingerprint(model)},
    }
    return ticket


def _step(method: SearchMethod, ticket: LotteryTicket, rule: StopRule, budget: bool) -> tuple[LotteryTicket, bool]:
    """Propose, score and accept or reject one candidate; False when there is nothing left to propose."""
    state = ticket.extra["search"]
    proposal = method.propose(ticket, state)
    if proposal is None:
        return ticket, False
    scored = method.score(proposal)
    passed = rule.passes(scored.metric)
    accepted = budget or passed
    history = ticket.history + [
        history_entry(len(ticket.history), proposal.phase, proposal.ticket.head_mask, proposal.ticket.mlp_mask,
                      metric=scored.metric, accepted=accepted, sparsity=proposal.ticket.sparsity, **proposal.record)
    ]  # fmt: skip
    if accepted:
        ticket = method.accept(ticket, proposal, scored)
        ticket.metrics["metric"] = scored.metric
        if budget:
            ticket.metrics["passes_stop_rule"] = passed
    else:
        ticket = method.reject(ticket, proposal, scored, state)
    ticket.history = history
    ticket.extra["search"] = state
    return ticket, True


def run_search(
    method: SearchMethod,
    model: nn.Module,
    metric: Any,
    config: TicketSearchConfig,
    *,
    output_dir: str | os.PathLike | None = None,
    metadata: SearchMetadata | None = None,
    progress: bool = True,
) -> LotteryTicket:
    """Run `method` to the end (stop rule, budget or step cap), resuming from and saving to `output_dir` after every
    step. A candidate that fails the stop rule (never, in a budget search) is recorded in the history, not kept.

    ```python
    >>> import tempfile, torch
    >>> from hf_lottery.search.structured import StructuredSearch
    >>> from hf_lottery.structure import EncoderStructure
    >>> model = tiny_bert().eval()
    >>> batches = [{"input_ids": torch.randint(0, 99, (4, 7)), "labels": torch.tensor([0, 1, 1, 0])}]
    >>> config = TicketSearchConfig(target_heads=6)
    >>> search = StructuredSearch(model, EncoderStructure(model), batches, "sst2", config)
    >>> folder = tempfile.mkdtemp()
    >>> ticket = run_search(search, model, "sst2", config, output_dir=folder, progress=False)
    >>> int(ticket.head_mask.sum()), [h["phase"] for h in ticket.history]
    (6, ['full', 'budget', 'budget'])
    >>> run_search(search, model, "sst2", config, output_dir=folder, progress=False) == ticket  # finished: as is
    True

    ```
    """
    started = time.perf_counter()
    ticket = load_search_state(output_dir, model, method.name, config)
    if ticket is not None and ticket.extra["search"]["finished"]:
        return ticket
    if ticket is None:
        ticket = _start(method, model, metric, config, metadata or SearchMetadata())
        save_search_state(ticket, output_dir)
    rule = StopRule(config.threshold, ticket.metrics["full_metric"], ticket.metrics["constant_baseline"])
    budget, cap = is_budget_search(config), method.max_steps()
    bar = progress_bar(None, f"{method.name} search", progress, total=method.total_steps(ticket))
    bar.update(len(ticket.history) - 1)
    while not ticket.extra["search"]["finished"]:
        ticket, stepped = _step(method, ticket, rule, budget)
        state = ticket.extra["search"]
        state["finished"] = state["finished"] or not stepped or (cap is not None and len(ticket.history) - 1 >= cap)
        state["wall_time_s"] = state.get("wall_time_s", 0.0) + time.perf_counter() - started
        started = time.perf_counter()
        save_search_state(ticket, output_dir)
        if stepped:
            bar.update(1)
            bar.set_postfix(metric=f"{ticket.history[-1]['metric']:.4f}", **method.describe(ticket))
    bar.close()
    logger.info(
        "%s ticket: %s, metric %.4f (full %.4f, %s).", method.name.capitalize(), method.describe(ticket),
        ticket.metrics["metric"], rule.full_metric,
        "budget" if budget else f"threshold {rule.threshold_value:.4f}",
    )  # fmt: skip
    return ticket
