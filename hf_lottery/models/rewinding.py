"""Rewinding: a ticket applied to the *pre-trained* weights with a fresh classifier head, ready to re-fine-tune."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification
from transformers.utils import logging

from ..gates import TicketHandle, apply_ticket
from ..structure import EncoderStructure
from ..tickets.ticket import LotteryTicket
from .compaction import compact_model


logger = logging.get_logger(__name__)


@torch.no_grad()
def freeze_removed_mlp_biases(model: nn.Module) -> int:
    """Stop training the output bias of every MLP compacted to width zero; return how many were frozen.

    A zero-width MLP still has ``output.dense.bias`` (zeroed by `compact_model`), which would otherwise receive a
    gradient and drift away from zero, while the gated model's MLP gate keeps that output at exactly zero."""
    layers = EncoderStructure(model).layers
    biases = [layer.mlp_output.bias for layer in layers if layer.intermediate.out_features == 0]
    biases = [bias for bias in biases if bias is not None]
    for bias in biases:
        bias.zero_()
        bias.requires_grad_(False)
    return len(biases)


def rewind(
    ticket: LotteryTicket,
    pretrained_model_name_or_path: str | os.PathLike | None = None,
    *,
    num_labels: int | None = None,
    seed: int | None = None,
    revision: str | None = None,
    model_class: type[nn.Module] | None = None,
    strict_base_model: bool = True,
    compact: bool = False,
    **from_pretrained_kwargs: Any,
) -> tuple[nn.Module, TicketHandle | None]:
    """Load the pre-trained model a ticket came from, give it a fresh classifier, and apply the ticket.

    With ``compact=False`` (default) the ticket is applied as gates and weight masks: the returned handle keeps pruned
    heads/MLPs off and pruned weights at exactly zero while you fine-tune (call ``handle.enforce_weight_masks()`` after
    optimizer steps, or use `TicketCallback`, which does it for you).

    With ``compact=True`` the pruned heads and MLPs are removed (`compact_model`) and the handle is `None`. The
    classifier is initialised as with ``compact=False`` for the same `seed` and each removed MLP's output bias is
    frozen at zero (`freeze_removed_mlp_biases`), so training follows the gated model (with dropout off and SGD, to
    float precision: tests/test_compact_training.py) and pays only for what the ticket keeps.
    ``model.hf_lottery_ticket`` holds the ticket; `hf_lottery.models.expansion.expand_compact_model` makes the trained
    model dense again.

    Args:
        pretrained_model_name_or_path: defaults to ``ticket.base_model``. When both are set and differ, a
            `ValueError` is raised unless `strict_base_model=False` (the masks were found on another model).
        num_labels: classifier size; `seed` makes the fresh classifier's initialisation reproducible.
        revision: defaults to ``ticket.base_model_revision``.
        compact: structured tickets only (a magnitude ticket's ``weight_masks`` cannot be removed: `ValueError`).

    Example:

    ```python
    >>> import tempfile, torch
    >>> from hf_lottery import LotteryTicket, rewind
    >>> folder = tempfile.mkdtemp()
    >>> tiny_bert().bert.save_pretrained(folder)  # a pre-trained encoder without a classifier
    >>> ticket = LotteryTicket(head_mask=torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]), mlp_mask=torch.tensor([1, 0]),
    ...                        base_model=folder)
    >>> gated, handle = rewind(ticket, num_labels=2, seed=42)
    >>> small, none = rewind(ticket, num_labels=2, seed=42, compact=True)
    >>> small.bert.encoder.layer[1].attention.self.num_attention_heads, none
    (1, None)
    >>> torch.equal(small.classifier.weight, gated.classifier.weight)
    True

    ```
    """
    if compact and ticket.weight_masks:
        raise ValueError(
            f"rewind(compact=True) removes whole heads and MLPs, but this {ticket.method} ticket has `weight_masks` "
            f"({len(ticket.weight_masks)} masked tensors) that cannot be removed; use compact=False for it."
        )
    source = pretrained_model_name_or_path or ticket.base_model
    if source is None:
        raise ValueError("The ticket records no `base_model`; pass the pre-trained model to rewind to.")
    given = pretrained_model_name_or_path
    if strict_base_model and ticket.base_model and given is not None and str(given) != str(ticket.base_model):
        raise ValueError(
            f"The ticket was found on {ticket.base_model!r} but you rewind to {str(given)!r}; "
            "pass `strict_base_model=False` if they hold the same pre-trained weights."
        )
    kwargs = {"num_labels": num_labels, "revision": revision or ticket.base_model_revision}
    kwargs = from_pretrained_kwargs | {key: value for key, value in kwargs.items() if value is not None}
    if seed is not None:
        torch.manual_seed(seed)  # the fresh classifier is initialised from the global RNG
    model = (model_class or AutoModelForSequenceClassification).from_pretrained(source, **kwargs)
    handle = None if compact else apply_ticket(model, ticket)
    if compact:
        model = compact_model(model, ticket, inplace=True)
        freeze_removed_mlp_biases(model)
        model.hf_lottery_ticket = ticket
    logger.info(
        "Rewound the %s/%s ticket to the pre-trained weights of %s%s.",
        ticket.method, ticket.kind, source, " (compacted)" if compact else "",
    )  # fmt: skip
    logger.debug("Rewound %r to %s with %r.", ticket, source, type(model).__name__)
    return model, handle
