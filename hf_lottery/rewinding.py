"""Rewinding: a ticket applied to the *pre-trained* weights with a fresh classifier head, ready to re-fine-tune."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification
from transformers.utils import logging

from .gates import TicketHandle, apply_ticket
from .ticket import LotteryTicket


logger = logging.get_logger(__name__)


def rewind(
    ticket: LotteryTicket,
    pretrained_model_name_or_path: str | os.PathLike | None = None,
    *,
    num_labels: int | None = None,
    seed: int | None = None,
    revision: str | None = None,
    model_class: type[nn.Module] | None = None,
    strict_base_model: bool = True,
    **from_pretrained_kwargs: Any,
) -> tuple[nn.Module, TicketHandle]:
    """Load the pre-trained model a ticket came from, give it a fresh classifier, and apply the ticket.

    The returned handle keeps pruned heads/MLPs off and pruned weights at exactly zero while you fine-tune (call
    ``handle.enforce_weight_masks()`` after optimizer steps, or use `TicketCallback`, which does it for you).

    Args:
        ticket: the ticket to rewind.
        pretrained_model_name_or_path: defaults to ``ticket.base_model``. When both are set and differ, a
            `ValueError` is raised unless `strict_base_model=False` (the masks were found on another model).
        num_labels: classifier size; `seed` makes the fresh classifier's initialisation reproducible.
        revision: defaults to ``ticket.base_model_revision``.

    Example:

    ```python
    >>> model, handle = rewind(ticket, num_labels=2, seed=42)   # doctest: +SKIP
    >>> Trainer(model=model, ..., callbacks=[TicketCallback(ticket)]).train()
    ```
    """
    source = pretrained_model_name_or_path or ticket.base_model
    if source is None:
        raise ValueError("The ticket records no `base_model`; pass the pre-trained model to rewind to.")
    if strict_base_model and ticket.base_model and pretrained_model_name_or_path is not None:
        if str(pretrained_model_name_or_path) != str(ticket.base_model):
            raise ValueError(
                f"The ticket was found on {ticket.base_model!r} but you rewind to {str(pretrained_model_name_or_path)!r}; "
                "pass `strict_base_model=False` if they hold the same pre-trained weights."
            )
    revision = revision or ticket.base_model_revision
    kwargs = dict(from_pretrained_kwargs)
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    if revision is not None:
        kwargs["revision"] = revision
    if seed is not None:
        torch.manual_seed(seed)  # the fresh classifier is initialised from the global RNG
    model = (model_class or AutoModelForSequenceClassification).from_pretrained(source, **kwargs)
    handle = apply_ticket(model, ticket)
    logger.info("Rewound the %s/%s ticket to the pre-trained weights of %s.", ticket.method, ticket.kind, source)
    logger.debug("Rewound %r to %s with %r.", ticket, source, type(model).__name__)
    return model, handle
