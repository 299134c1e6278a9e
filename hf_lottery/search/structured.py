"""Iterative head + MLP importance pruning with the paper's 90 % stop rule (`find_structured_ticket`)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..config import TicketSearchConfig, resolve_search_config
from ..evaluation import evaluate
from ..gates import apply_ticket
from ..structure import EncoderStructure
from ..tickets.ticket import LotteryTicket
from .importance import ImportanceResult, compute_importance
from .loop import Proposal, Scored, SearchMetadata, is_budget_search, run_search
from .selection import STRUCTURED_PHASES, budget_step_sizes, heads_per_step, least_important, phase_step_sizes


def find_structured_ticket(
    model: nn.Module,
    dataloader: Iterable,
    metric: Any,
    *,
    config: TicketSearchConfig | None = None,
    output_dir: str | os.PathLike | None = None,
    base_model: str | os.PathLike | None = None,
    base_model_revision: str | None = None,
    task: str | None = None,
    seed: int | None = None,
    progress: bool = True,
    **settings: Any,
) -> LotteryTicket:
    """Find a structured lottery ticket: mask heads and MLPs by importance while ``metric ≥ threshold × full``.

    Schedule (the paper's): each step masks, among the heads still kept, the least important ``head_fraction`` of
    *all* heads (14 of 144 in bert-base) and the least important remaining MLP; when a step fails the search
    continues with heads only (half the step), then MLPs only (one per step). No retraining; importance is recomputed
    at the current mask after every step, from the same forward+backward pass that gives the step's metric (one pass
    per step; ``passes_per_step=2`` is the paper's costlier scheme and finds the identical ticket).

    With a budget (``target_sparsity``, ``target_heads`` and/or ``target_mlps``, an extension) the stop rule is
    ignored: steps of the first phase, never past a target, continue until every target is met, and the metric
    reached is recorded (``ticket.metrics["passes_stop_rule"]`` says whether it would pass the rule).

    Args:
        model: the fine-tuned classifier (a BERT-style encoder).
        dataloader: the search data as dict batches with ``labels``; record its origin in ``search_data``.
        metric: task name (``"sst2"``), `TaskMetric`, `glue_metric(task)` or callable ``(logits, labels) -> float``.
        config: a `TicketSearchConfig`; ``settings`` (its field names) override it.
        output_dir: the ticket-so-far is written there after every step; a search found there is resumed (with the
            same settings only).
        base_model / base_model_revision / task / seed: recorded in the ticket.
        progress: show a progress bar (main process only).

    Example:

    ```python
    >>> model = tiny_bert().eval()
    >>> batches = [{"input_ids": torch.randint(0, 99, (4, 7)), "labels": torch.tensor([0, 1, 1, 0])}] * 2
    >>> ticket = find_structured_ticket(model, batches, "sst2", target_heads=5, target_mlps=1, progress=False)
    >>> int(ticket.head_mask.sum()), int(ticket.mlp_mask.sum()), ticket.extra["search_config"]["target_heads"]
    (5, 1, 5)

    ```
    """
    config = resolve_search_config(config, **settings)
    structure = EncoderStructure(model)
    search = StructuredSearch(model, structure, dataloader, metric, config)
    meta = SearchMetadata(base_model, base_model_revision, task, seed)
    return run_search(search, model, metric, config, output_dir=output_dir, metadata=meta, progress=progress)


class StructuredSearch:
    """The structured search's part of the shared loop: importance-ranked head/MLP candidates.

    ```python
    >>> model = tiny_bert()
    >>> search = StructuredSearch(model, EncoderStructure(model), [], "sst2", TicketSearchConfig())
    >>> search.head_step, search.total_steps(None)
    (1, 18)

    ```
    """

    name = "structured"

    def __init__(
        self,
        model: nn.Module,
        structure: EncoderStructure,
        dataloader: Iterable,
        metric: Any,
        config: TicketSearchConfig,
    ):
        self.model, self.structure, self.dataloader = model, structure, dataloader
        self.metric, self.config = metric, config
        self.head_step = heads_per_step(structure.num_layers, structure.num_heads, config.head_fraction)
        self.budget = is_budget_search(config)
        sizes = {"target_heads": structure.num_layers * structure.num_heads, "target_mlps": structure.num_layers}
        for name, size in sizes.items():
            if getattr(config, name) is not None and getattr(config, name) > size:
                raise ValueError(f"`{name}` must be at most the model's {size}; got {getattr(config, name)}.")

    def _score_masks(self, head: torch.Tensor, mlp: torch.Tensor) -> Scored:
        c = self.config
        result = compute_importance(
            self.model, self.dataloader, metric=None if c.passes_per_step == 2 else self.metric, head_mask=head,
            mlp_mask=mlp, paper_compat=c.paper_compat, importance=c.importance, progress=False,
            weight_gradients=c.passes_per_step == 2, normalize_heads_by_layer=c.normalize_heads_by_layer,
            normalize_mlps_by_tokens=c.normalize_mlps_by_tokens, normalize_globally=c.normalize_globally,
        )  # fmt: skip
        if c.passes_per_step == 2:  # the paper's scheme: a separate evaluation forward
            with apply_ticket(self.model, LotteryTicket(head_mask=head, mlp_mask=mlp, kind="custom")):
                result.metric = evaluate(self.model, self.dataloader, self.metric, progress=False).metric
        return Scored(result.metric, result.predictions, result.labels, payload=result)

    def start(self) -> tuple[LotteryTicket, Scored]:
        full = LotteryTicket.full(self.structure, kind="good")
        scored = self._score_masks(full.head_mask, full.mlp_mask)
        return _with_importance(full, scored.payload), scored

    def propose(self, ticket: LotteryTicket, state: dict[str, Any]) -> Proposal | None:
        state.setdefault("head_step", self.head_step)
        if self.budget:
            sizes = budget_step_sizes(
                self.head_step, int(ticket.head_mask.sum()), int(ticket.mlp_mask.sum()), self.config.target_heads,
                self.config.target_mlps,
                free=self.config.target_sparsity is not None and ticket.sparsity < self.config.target_sparsity,
            )  # fmt: skip
            return None if sizes is None else _proposal(ticket, "budget", *sizes)
        step_sizes = phase_step_sizes(self.head_step)
        while state["phase"] < len(STRUCTURED_PHASES):
            phase = STRUCTURED_PHASES[state["phase"]]
            proposal = _proposal(ticket, phase, *step_sizes[phase])
            if proposal is not None:
                return proposal
            state["phase"] += 1  # nothing left to mask in this phase
        return None

    def score(self, proposal: Proposal) -> Scored:
        return self._score_masks(proposal.ticket.head_mask, proposal.ticket.mlp_mask)

    def accept(self, ticket: LotteryTicket, proposal: Proposal, scored: Scored) -> LotteryTicket:
        return _with_importance(proposal.ticket, scored.payload)

    def reject(
        self, ticket: LotteryTicket, proposal: Proposal, scored: Scored, state: dict[str, Any]
    ) -> LotteryTicket:
        state["phase"] += 1
        if self.config.paper_compat:  # the paper's code kept the failed mask's importance
            return _with_importance(ticket, scored.payload)
        return ticket

    def total_steps(self, ticket: LotteryTicket | None) -> int | None:
        if self.config.structured_max_steps is not None:
            return self.config.structured_max_steps
        heads = self.structure.num_layers * self.structure.num_heads
        half = max(1, self.head_step // 2)
        return math.ceil(heads / self.head_step) + math.ceil(heads / half) + self.structure.num_layers

    def max_steps(self) -> int | None:
        return self.config.structured_max_steps

    def describe(self, ticket: LotteryTicket) -> dict[str, Any]:
        return {"heads": int(ticket.head_mask.sum()), "mlps": int(ticket.mlp_mask.sum())}


def _with_importance(ticket: LotteryTicket, result: ImportanceResult) -> LotteryTicket:
    return ticket.copy(head_importance=result.head_importance, mlp_importance=result.mlp_importance)


def _proposal(ticket: LotteryTicket, phase: str, n_heads: int, n_mlps: int) -> Proposal | None:
    """Mask the `n_heads` least important kept heads and `n_mlps` MLPs; None when a requested part is exhausted."""
    head_sel = least_important(ticket.head_importance, ticket.head_mask, n_heads)
    mlp_sel = least_important(ticket.mlp_importance, ticket.mlp_mask, n_mlps)
    if (n_heads and not head_sel.any()) or (n_mlps and not mlp_sel.any()) or not (n_heads or n_mlps):
        return None
    candidate = ticket.copy(head_mask=ticket.head_mask & ~head_sel, mlp_mask=ticket.mlp_mask & ~mlp_sel)
    record = {"masked_heads": head_sel.nonzero().tolist(), "masked_mlps": mlp_sel.nonzero().flatten().tolist()}
    return Proposal(phase, candidate, record)
