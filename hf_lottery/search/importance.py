"""Head and MLP importance from one forward+backward pass: Michel et al. (2019) as the paper computes it, or Fisher.

``I = Σ_batches |∂L/∂ξ|`` for gates ξ on every head and MLP (at the current mask), ``L`` the batch-mean loss, the
gradient taken per batch (the paper's code never resets it, so it sums the *running cumulative* gradient;
``paper_compat=True`` reproduces that). Parameters are frozen, so backward computes activation gradients only.
``importance="fisher"`` (Kwon et al. 2022) sums squared *per-example* gate gradients in the same single pass: the
gates get a batch dimension (`TicketHandle.per_example`), so the gradient for gate ``[b]`` is example ``b``'s own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..evaluation import PredictionCollector, batch_to_device, check_labels, eval_mode, model_device, progress_bar
from ..gates import TicketHandle, active_handles
from ..structure import EncoderStructure
from ..tickets.ticket import LotteryTicket


@dataclass
class ImportanceResult:
    """Importance scores and the metric of the same pass.

    Attributes:
        head_importance / mlp_importance: ``[L, H]`` / ``[L]`` scores after the chosen normalisations.
        raw_head_importance / raw_mlp_importance: ``Σ |∂L/∂ξ|`` (or Fisher's sum) before any normalisation, summed
            over processes (float64 for a float64 model, else float32).
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
    """Divide each layer's head scores by their L-`exponent` norm (the paper adds 1e-20 to avoid 0/0).

    ```python
    >>> normalize_by_layer(torch.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])

    ```
    """
    norm = head_importance.pow(exponent).sum(-1).pow(1.0 / exponent)
    return head_importance / (norm.unsqueeze(-1) + 1e-20)


def min_max(scores: torch.Tensor) -> torch.Tensor:
    """Rescale to [0, 1] globally; a constant tensor maps to zeros (the paper's code would divide by zero).

    ```python
    >>> min_max(torch.tensor([2.0, 4.0, 3.0])), min_max(torch.ones(2))
    (tensor([0.0000, 1.0000, 0.5000]), tensor([0., 0.]))

    ```
    """
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
    """The paper's normalisations of raw Σ|∂L/∂ξ| scores (a pure function).

    ```python
    >>> head, mlp = normalize_importance(torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([2.0, 6.0]), num_tokens=4)
    >>> head, mlp
    (tensor([[0.6000, 0.8000], [1.0000, 0.0000]]), tensor([0., 1.]))

    ```
    """
    head, mlp = raw_head.clone(), raw_mlp.clone()
    if normalize_mlps_by_tokens:
        mlp = mlp / max(num_tokens, 1)
    if normalize_heads_by_layer:
        head = normalize_by_layer(head)
    if normalize_globally:
        head, mlp = min_max(head), min_max(mlp)
    return head, mlp


def frozen_parameters(model: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Set ``requires_grad=False`` on every parameter for the duration, so backward skips weight gradients.

    ```python
    >>> layer = nn.Linear(2, 2)
    >>> with frozen_parameters(layer):
    ...     layer.weight.requires_grad
    False
    >>> layer.weight.requires_grad
    True

    ```
    """
    return _parameters_set(model, "requires_grad", False)


@contextlib.contextmanager
def _parameters_set(model: nn.Module, attr: str, value: Any) -> Iterator[None]:
    """Set `attr` of every parameter to `value` for the duration, and put the old values back afterwards."""
    saved = [(p, getattr(p, attr)) for p in model.parameters()]
    for p, _ in saved:
        setattr(p, attr, value)
    try:
        yield
    finally:
        for p, old in saved:
            setattr(p, attr, old)


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
    """The head/MLP masks in effect: explicit masks, else `ticket`, else the tickets applied to `model`.

    ```python
    >>> model = tiny_bert()
    >>> head, mlp, handles = current_masks(model, None, torch.tensor([True, False]), None)
    >>> head.tolist(), mlp.tolist(), handles
    ([[True, True, True, True], [True, True, True, True]], [True, False], [])

    ```
    """
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
    importance: Literal["gradient", "fisher"] = "gradient",
    normalize_heads_by_layer: bool = True,
    normalize_mlps_by_tokens: bool = True,
    normalize_globally: bool = True,
    paper_compat: bool = False,
    weight_gradients: bool = False,
    progress: bool = True,
    desc: str = "importance",
) -> ImportanceResult:
    """Head ``[L, H]`` and MLP ``[L]`` importance, and the metric, from one forward+backward pass.

    Args:
        model: a BERT-style classifier (eval mode is used for the pass; the previous mode is restored).
        dataloader: batches as dicts with ``labels`` (e.g. `DataCollatorWithPadding`). Under a distributed launch,
            each process passes its own shard; scores are summed across processes and every rank gets identical ones.
        metric: task name / metric object / callable for the metric of the same pass (optional).
        head_mask, mlp_mask, ticket: the mask to score at (pruned gates sit at 0, as in the paper). Without them, the
            tickets already applied to `model` with `apply_ticket` are respected, else everything is kept.
        importance: ``"gradient"`` (the paper's) or ``"fisher"`` (an extension; assumes the model's loss is the
            batch mean of per-example losses, as every transformers sequence-classification head computes it).
        normalize_heads_by_layer, normalize_mlps_by_tokens, normalize_globally: the paper's normalisations.
        paper_compat: sum |cumulative gradient| as the paper's code does, instead of the per-batch |gradient|.
        weight_gradients: also compute (and discard) every weight gradient, as a training backward does — only
            for cost comparisons with the paper's scheme; the scores are the same.

    Example:

    ```python
    >>> result = compute_importance(tiny_bert(), tiny_data()[2], metric="sst2", importance="fisher", progress=False)
    >>> result.head_importance.shape, result.mlp_importance.shape, result.num_examples, result.num_tokens
    (torch.Size([2, 4]), torch.Size([2]), 8, 32)

    ```
    """
    if importance not in ("gradient", "fisher"):
        raise ValueError(f"`importance` must be 'gradient' or 'fisher'; got {importance!r}.")
    head, mlp, handles = current_masks(model, head_mask, mlp_mask, ticket)
    structure = EncoderStructure(model)
    sums = _Sums(head.shape, head.shape[0], importance, paper_compat)
    with _neutralised(handles), TicketHandle(structure.model, None, differentiable=True, structure=structure) as gates:
        gates.set_masks(head, mlp)
        batches = progress_bar(dataloader, desc, progress)
        tokens, collector = _accumulate(model, batches, gates, sums, weight_gradients)
    totals = distributed.all_reduce_sum(torch.cat([sums.head.flatten(), sums.mlp, torch.tensor([float(tokens)])]))
    num_heads = sums.head.numel()
    dtype = torch.float64 if structure.layers[0].attention_output.weight.dtype == torch.float64 else torch.float32
    raw_head = totals[:num_heads].view_as(sums.head).to(dtype)
    raw_mlp = totals[num_heads:-1].to(dtype)
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
    # the metric, loss, predictions, labels and number of examples of the same pass
    return ImportanceResult(head_scores, mlp_scores, raw_head, raw_mlp, num_tokens=tokens, **vars(evaluated))


class _Sums:
    """Running importance sums: Σ|g| (or the paper's Σ|cumulative g|), or Fisher's Σ_examples g²."""

    def __init__(self, head_shape: torch.Size, num_layers: int, kind: str, paper_compat: bool):
        self.kind, self.paper_compat = kind, paper_compat
        self.head = torch.zeros(head_shape, dtype=torch.float64)
        self.mlp = torch.zeros(num_layers, dtype=torch.float64)
        self.cumulative = (torch.zeros_like(self.head), torch.zeros_like(self.mlp))

    def add(self, head_grad: torch.Tensor, mlp_grad: torch.Tensor, batch_size: int) -> None:
        for total, cumulative, grad in zip((self.head, self.mlp), self.cumulative, (head_grad, mlp_grad)):
            grad = grad.detach().double().cpu()
            if self.kind == "fisher":  # per-example gradient of the example's own loss = B × that of the batch mean
                total += (grad * batch_size).pow(2).sum(0)
            elif self.paper_compat:
                cumulative += grad
                total += cumulative.abs()
            else:
                total += grad.abs()


def _accumulate(
    model: nn.Module, batches: Iterable, gates: TicketHandle, sums: _Sums, weight_gradients: bool
) -> tuple[int, PredictionCollector]:
    device = model_device(model)
    tokens = 0
    collector = PredictionCollector()
    freeze = _parameters_set(model, "grad", None) if weight_gradients else frozen_parameters(model)
    with eval_mode(model), freeze, torch.enable_grad():
        for batch in batches:
            batch = batch_to_device(batch, device)
            check_labels(batch["labels"], model)
            size = int(batch["labels"].shape[0])
            leaves = list(gates.per_example(size)) if sums.kind == "fisher" else [gates.head_gates, gates.mlp_gates]
            outputs = model(**batch)
            if outputs.loss is None:
                raise ValueError("The model returned no loss; batches need `labels` for importance scores.")
            if weight_gradients:
                outputs.loss.backward()  # the paper's scheme: every weight gradient too (only for cost comparisons)
                grads = [leaf.grad for leaf in leaves]
                for leaf in leaves:
                    leaf.grad = None
            else:
                grads = torch.autograd.grad(outputs.loss, leaves)
            sums.add(*grads, size)
            mask = batch.get("attention_mask")
            tokens += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
            collector.add(outputs.logits, batch["labels"], outputs.loss)
    return tokens, collector
