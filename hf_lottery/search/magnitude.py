"""Iterative global magnitude pruning with the paper's 90 % stop rule (`find_magnitude_ticket`)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ..config import TicketSearchConfig, resolve_search_config
from ..evaluation import evaluate
from ..structure import EncoderStructure
from ..tickets.ticket import LotteryTicket
from .loop import Proposal, Scored, SearchMetadata, is_budget_search, run_search
from .selection import select_global


def find_magnitude_ticket(
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
    parameter_names: Sequence[str] | None = None,
    **settings: Any,
) -> LotteryTicket:
    """Find a magnitude lottery ticket: prune the globally smallest weights while ``metric ≥ threshold × full``.

    One global L1 ranking over the paper's weight set (every layer's Q/K/V weights and biases, attention output
    weight and bias, intermediate weight and bias, and MLP output weight; never embeddings, LayerNorms, pooler,
    classifier or the MLP output bias). Each step prunes ``magnitude_prune_fraction`` of the weights still kept
    (sparsity after k steps ``1 − 0.9^k``), at most ``magnitude_max_steps`` steps; the last mask that passes is kept
    (the paper's code discarded a 10th passing step). One forward pass per step.

    With ``target_sparsity`` (an extension) the stop rule and the step cap are ignored: steps continue until the
    sparsity reaches the target, the last one trimmed to hit it exactly, and the metric reached is recorded.

    The arguments are `find_structured_ticket`'s (the model's weights are restored after the search), and
    ``parameter_names``, which overrides the weight set (names relative to the encoder; default: the paper's).

    Example:

    ```python
    >>> model = tiny_bert().eval()
    >>> batches = [{"input_ids": torch.randint(0, 99, (4, 7)), "labels": torch.tensor([0, 1, 1, 0])}] * 2
    >>> ticket = find_magnitude_ticket(model, batches, "sst2", target_sparsity=0.25, progress=False)
    >>> round(ticket.sparsity, 4), len(ticket.history) - 1
    (0.25, 3)

    ```
    """
    config = resolve_search_config(config, **settings)
    for name in ("target_heads", "target_mlps"):
        if getattr(config, name) is not None:
            raise ValueError(f"`{name}` applies to the structured search only; use `target_sparsity` here.")
    structure = EncoderStructure(model)
    params = _weight_set(structure, parameter_names)
    meta = SearchMetadata(base_model, base_model_revision, task, seed)
    original = {name: p.detach().clone() for name, p in params.items()}
    try:
        search = MagnitudeSearch(model, structure, params, original, dataloader, metric, config)
        return run_search(search, model, metric, config, output_dir=output_dir, metadata=meta, progress=progress)
    finally:  # put the weights back, whatever happens
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(original[name])


class MagnitudeSearch:
    """The magnitude search's part of the shared loop: global L1 candidates, scored by one forward pass.

    ```python
    >>> model = tiny_bert()
    >>> structure = EncoderStructure(model)
    >>> params = structure.magnitude_parameters()
    >>> search = MagnitudeSearch(model, structure, params, {}, [], "sst2", TicketSearchConfig(target_sparsity=0.5))
    >>> search.total_steps(None)
    7

    ```
    """

    name = "magnitude"

    def __init__(
        self,
        model: nn.Module,
        structure: EncoderStructure,
        params: dict[str, nn.Parameter],
        original: dict[str, torch.Tensor],
        dataloader: Iterable,
        metric: Any,
        config: TicketSearchConfig,
    ):
        self.model, self.structure, self.params, self.original = model, structure, params, original
        self.dataloader, self.metric, self.config = dataloader, metric, config
        self.budget = is_budget_search(config)

    def _evaluate(self) -> Scored:
        result = evaluate(self.model, self.dataloader, self.metric, progress=False)
        return Scored(result.metric, result.predictions, result.labels)

    def start(self) -> tuple[LotteryTicket, Scored]:
        scored = self._evaluate()
        masks = {name: torch.ones_like(p, dtype=torch.bool, device="cpu") for name, p in self.params.items()}
        ticket = LotteryTicket.full(self.structure, kind="good", method="magnitude").copy(weight_masks=masks)
        return ticket, scored

    def propose(self, ticket: LotteryTicket, state: dict[str, Any]) -> Proposal | None:
        kept = sum(int(m.sum()) for m in ticket.weight_masks.values())
        count = round(self.config.magnitude_prune_fraction * kept)
        if self.budget:
            total = sum(m.numel() for m in ticket.weight_masks.values())
            needed = math.ceil(self.config.target_sparsity * total - 1e-9) - (total - kept)
            count = min(max(count, 1), needed)  # the last step is trimmed to land on the target (<= 0: reached)
        if count <= 0:
            return None
        masks = _prune_step(self.original, ticket.weight_masks, count)
        return Proposal("magnitude", ticket.copy(weight_masks=masks))

    def score(self, proposal: Proposal) -> Scored:
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(self.original[name] * proposal.ticket.weight_masks[name].to(p.device, p.dtype))
        return self._evaluate()

    def accept(self, ticket: LotteryTicket, proposal: Proposal, scored: Scored) -> LotteryTicket:
        return proposal.ticket

    def reject(
        self, ticket: LotteryTicket, proposal: Proposal, scored: Scored, state: dict[str, Any]
    ) -> LotteryTicket:
        state["finished"] = True
        return ticket

    def total_steps(self, ticket: LotteryTicket | None) -> int | None:
        if not self.budget:
            return self.config.magnitude_max_steps
        keep = math.log(1 - self.config.target_sparsity) / math.log(1 - self.config.magnitude_prune_fraction)
        return math.ceil(keep - 1e-9)

    def max_steps(self) -> int | None:
        return None if self.budget else self.config.magnitude_max_steps

    def describe(self, ticket: LotteryTicket) -> dict[str, Any]:
        return {"sparsity": f"{ticket.sparsity:.4f}"}


def _weight_set(structure: EncoderStructure, names: Sequence[str] | None) -> dict[str, nn.Parameter]:
    all_params = structure.named_encoder_parameters()
    names = list(names) if names is not None else structure.magnitude_parameter_names()
    unknown = [n for n in names if n not in all_params]
    if unknown:
        raise ValueError(f"`parameter_names` not in the encoder: {unknown[:5]}; e.g. {list(all_params)[:3]}.")
    return {name: all_params[name] for name in names}


def _prune_step(
    original: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], count: int
) -> dict[str, torch.Tensor]:
    """Prune `count` more weights: the globally smallest |w| among the kept ones."""
    kept = {name: masks[name].to(original[name].device) for name in original}
    magnitudes = {name: w.abs() for name, w in original.items()}
    pruned = select_global(magnitudes, kept, count)
    return {name: (kept[name] & ~pruned[name]).cpu() for name in original}
