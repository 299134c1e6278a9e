"""Michel et al. (2019) head and MLP importance, as the paper computes it, from one forward+backward pass.

For gates ξ on every head and MLP (initialised to the current mask), the importance is ``I = Σ_batches |∂L/∂ξ|``,
where ``L`` is the batch-mean task loss. The gradient is taken per batch (the paper's code never resets the gate
gradient between batches, so it sums the absolute *running cumulative* gradient; ``paper_compat=True`` reproduces
that). Parameters are frozen during the pass, so backward computes activation gradients only — about half the cost
of a training backward. Normalisation as in the paper: heads divided by their layer's L2 norm, MLPs by the number
of tokens, then each min-max rescaled to [0, 1]; each step switchable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..evaluation import PredictionCollector, batch_to_device, eval_mode, model_device, progress_bar
from ..gates import TicketHandle, active_handles
from ..structure import EncoderStructure
from ..ticket import LotteryTicket


@dataclass
class ImportanceResult:
    """Importance scores and the metric of the same pass.

    Attributes:
        head_importance: ``[L, H]`` scores after the chosen normalisations.
        mlp_importance: ``[L]`` scores after the chosen normalisations.
        raw_head_importance / raw_mlp_importance: ``Σ |∂L/∂ξ|`` before any normalisation (summed over processes).
        metric: the task metric of the same forward pass (None without a metric).
        num_tokens: non-padding tokens seen (all processes).
    """

    head_importance: torch.Tensor
    mlp_importance: torch.Tensor
    raw_head_importance: torch.Tensor
    raw_mlp_importance: torch.Tensor
    metric: float | None
    loss: float
    num_tokens: int
    num_examples: int
    predictions: np.ndarray
    labels: np.ndarray


def normalize_by_layer(head_importance: torch.Tensor, exponent: float = 2.0) -> torch.Tensor:
    """Divide each layer's head scores by their L-`exponent` norm (the paper adds 1e-20 to avoid 0/0)."""
    norm = head_importance.pow(exponent).sum(-1).pow(1.0 / exponent)
    return head_importance / (norm.unsqueeze(-1) + 1e-20)


def min_max(scores: torch.Tensor) -> torch.Tensor:
    """Rescale to [0, 1] globally; a constant tensor maps to zeros (the paper's code would divide by zero)."""
    low, high = scores.min(), scores.max()
    if high == low:
        return torch.zeros_like(scores)
    return (scores - low) / (high - low)


def normalize_importance(
    raw_head: torch.Tensor,
    raw_mlp: torch.Tensor,
    num_tokens: int,
    *,
    normalize_heads_by_layer: bool = True,
    normalize_mlps_by_tokens: bool = True,
    normalize_globally: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's normalisations of raw Σ|∂L/∂ξ| scores (a pure function)."""
    head, mlp = raw_head.clone(), raw_mlp.clone()
    if normalize_mlps_by_tokens:
        mlp = mlp / max(num_tokens, 1)
    if normalize_heads_by_layer:
        head = normalize_by_layer(head)
    if normalize_globally:
        head, mlp = min_max(head), min_max(mlp)
    return head, mlp


@contextlib.contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Set ``requires_grad=False`` on every parameter for the duration, so backward skips weight gradients."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


@contextlib.contextmanager
def _neutralised(handles: list[TicketHandle]) -> Iterator[None]:
    """Temporarily open the head/MLP gates of already-applied tickets (their masks move to the importance gates)."""
    saved = [(h, h.head_gates.detach().clone(), h.mlp_gates.detach().clone()) for h in handles]
    for handle, _, _ in saved:
        handle.set_masks(torch.ones_like(handle.head_gates), torch.ones_like(handle.mlp_gates))
    try:
        yield
    finally:
        for handle, head, mlp in saved:
            handle.set_masks(head, mlp)


def current_masks(
    model: nn.Module, head_mask: torch.Tensor | None, mlp_mask: torch.Tensor | None, ticket: LotteryTicket | None
) -> tuple[torch.Tensor, torch.Tensor, list[TicketHandle]]:
    """The head/MLP masks in effect: explicit masks, else `ticket`, else the tickets applied to `model`."""
    structure = EncoderStructure(model)
    shape = (structure.num_layers, structure.num_heads)
    handles = active_handles(structure.model)
    if ticket is not None:
        ticket.validate(structure)
        head_mask = ticket.head_mask if head_mask is None else head_mask
        mlp_mask = ticket.mlp_mask if mlp_mask is None else mlp_mask
    head = torch.ones(shape, dtype=torch.bool) if head_mask is None else torch.as_tensor(head_mask).bool().cpu()
    mlp = torch.ones(shape[0], dtype=torch.bool) if mlp_mask is None else torch.as_tensor(mlp_mask).bool().cpu()
    if tuple(head.shape) != shape or tuple(mlp.shape) != shape[:1]:
        raise ValueError(
            f"head_mask must have shape {shape} and mlp_mask ({shape[0]},); got {tuple(head.shape)} and "
            f"{tuple(mlp.shape)}."
        )
    for handle in handles:  # already-applied tickets prune too
        head = head & (handle.head_gates.detach().cpu() != 0)
        mlp = mlp & (handle.mlp_gates.detach().cpu() != 0)
    return head, mlp, handles


def compute_importance(
    model: nn.Module,
    dataloader: Iterable,
    *,
    metric: Any = None,
    head_mask: torch.Tensor | None = None,
    mlp_mask: torch.Tensor | None = None,
    ticket: LotteryTicket | None = None,
    normalize_heads_by_layer: bool = True,
    normalize_mlps_by_tokens: bool = True,
    normalize_globally: bool = True,
    paper_compat: bool = False,
    weight_gradients: bool = False,
    progress: bool = True,
    desc: str = "importance",
) -> ImportanceResult:
    """Michel et al. head ``[L, H]`` and MLP ``[L]`` importance, and the metric, from one forward+backward pass.

    Args:
        model: a BERT-style classifier (eval mode is used for the pass; the previous mode is restored).
        dataloader: batches as dicts with ``labels`` (e.g. `DataCollatorWithPadding`). Under a distributed launch,
            each process passes its own shard; scores are summed across processes and every rank gets identical ones.
        metric: task name / metric object / callable for the metric of the same pass (optional).
        head_mask, mlp_mask, ticket: the mask to score at (pruned gates sit at 0, as in the paper). Without them, the
            tickets already applied to `model` with `apply_ticket` are respected, else everything is kept.
        normalize_heads_by_layer, normalize_mlps_by_tokens, normalize_globally: the paper's normalisations.
        paper_compat: sum |cumulative gradient| as the paper's code does, instead of the per-batch |gradient|.
        weight_gradients: also compute (and discard) every weight gradient, as a training backward does — only
            for cost comparisons with the paper's scheme; the scores are the same.

    Example:

    ```python
    >>> result = compute_importance(model, dev_loader, metric="sst2")   # doctest: +SKIP
    >>> result.head_importance.shape, result.metric
    (torch.Size([12, 12]), 0.92)
    ```
    """
    head, mlp, handles = current_masks(model, head_mask, mlp_mask, ticket)
    structure = EncoderStructure(model)
    with _neutralised(handles):
        gates = TicketHandle(structure.model, None, differentiable=True, structure=structure)
        try:
            gates.set_masks(head, mlp)
            raw_head, raw_mlp, tokens, collector = _accumulate(
                model, dataloader, gates, paper_compat, weight_gradients, progress, desc
            )
        finally:
            gates.remove()
    totals = distributed.all_reduce_sum(torch.cat([raw_head.flatten(), raw_mlp, torch.tensor([float(tokens)])]))
    num_heads = raw_head.numel()
    raw_head = totals[:num_heads].view_as(raw_head).float()
    raw_mlp = totals[num_heads:-1].float()
    tokens = int(totals[-1])
    evaluated = collector.finish(metric)
    head_scores, mlp_scores = normalize_importance(
        raw_head,
        raw_mlp,
        tokens,
        normalize_heads_by_layer=normalize_heads_by_layer,
        normalize_mlps_by_tokens=normalize_mlps_by_tokens,
        normalize_globally=normalize_globally,
    )
    return ImportanceResult(
        head_importance=head_scores,
        mlp_importance=mlp_scores,
        raw_head_importance=raw_head,
        raw_mlp_importance=raw_mlp,
        metric=evaluated.metric,
        loss=evaluated.loss,
        num_tokens=tokens,
        num_examples=evaluated.num_examples,
        predictions=evaluated.predictions,
        labels=evaluated.labels,
    )


def _accumulate(
    model: nn.Module,
    dataloader: Iterable,
    gates: TicketHandle,
    paper_compat: bool,
    weight_gradients: bool,
    progress: bool,
    desc: str,
) -> tuple[torch.Tensor, torch.Tensor, int, PredictionCollector]:
    device = model_device(model)
    head_sum = torch.zeros_like(gates.head_gates, dtype=torch.float64)
    mlp_sum = torch.zeros_like(gates.mlp_gates, dtype=torch.float64)
    head_cum = torch.zeros_like(head_sum)
    mlp_cum = torch.zeros_like(mlp_sum)
    tokens = 0
    collector = PredictionCollector()
    freeze = contextlib.nullcontext() if weight_gradients else frozen_parameters(model)
    saved_grads = _stash_grads(model) if weight_gradients else None
    with eval_mode(model), freeze, torch.enable_grad():
        for batch in progress_bar(dataloader, desc, progress):
            batch = batch_to_device(batch, device)
            outputs = model(**batch)
            if outputs.loss is None:
                raise ValueError("The model returned no loss; batches need `labels` for importance scores.")
            if weight_gradients:
                outputs.loss.backward()
                head_grad, mlp_grad = gates.head_gates.grad, gates.mlp_gates.grad
                gates.zero_grad()
            else:
                head_grad, mlp_grad = torch.autograd.grad(outputs.loss, [gates.head_gates, gates.mlp_gates])
            if paper_compat:
                head_cum += head_grad
                mlp_cum += mlp_grad
                head_sum += head_cum.abs()
                mlp_sum += mlp_cum.abs()
            else:
                head_sum += head_grad.abs()
                mlp_sum += mlp_grad.abs()
            mask = batch.get("attention_mask")
            tokens += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
            collector.add(outputs.logits, batch["labels"], outputs.loss)
    if saved_grads is not None:
        for param, grad in saved_grads:
            param.grad = grad
    return head_sum.cpu(), mlp_sum.cpu(), tokens, collector


def _stash_grads(model: nn.Module) -> list[tuple[nn.Parameter, torch.Tensor | None]]:
    """Detach the parameters' current gradients (restored after a pass that computes weight gradients)."""
    saved = [(p, p.grad) for p in model.parameters()]
    for p, _ in saved:
        p.grad = None
    return saved
