"""Resumable searches: the ticket found so far is written after every step, with the state needed to go on."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.utils import logging

from .. import distributed
from ..structure import unwrap_model
from ..ticket import TICKET_CONFIG_NAME, LotteryTicket


logger = logging.get_logger(__name__)


@torch.no_grad()
def model_fingerprint(model: nn.Module) -> str:
    """A cheap identity of the weights (per-parameter float64 sums), to refuse resuming on another model."""
    sums = [p.detach().double().sum().reshape(1).cpu() for p in unwrap_model(model).parameters()]
    data = torch.cat(sums).numpy().round(6).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def load_search_state(output_dir: str | os.PathLike | None, model: nn.Module, method: str) -> LotteryTicket | None:
    """The ticket saved by an interrupted (or finished) search in `output_dir`, or None when there is none."""
    if output_dir is None or not (Path(output_dir) / TICKET_CONFIG_NAME).is_file():
        return None
    ticket = LotteryTicket.from_pretrained(output_dir)
    state = ticket.extra.get("search")
    if not state or ticket.method != method:
        raise ValueError(
            f"{output_dir} holds a ticket that is not a saved {method} search; use another output folder or remove it."
        )
    if state.get("model_fingerprint") != model_fingerprint(model):
        raise ValueError(
            f"The {method} search saved in {output_dir} was run on other weights than this model's; resuming would "
            "mix two searches. Use another output folder, or delete it to start over."
        )
    logger.info("Resuming the %s search from %s (step %d).", method, output_dir, len(ticket.history) - 1)
    return ticket


def save_search_state(ticket: LotteryTicket, output_dir: str | os.PathLike | None) -> None:
    """Write the ticket-so-far atomically (main process only)."""
    if output_dir is not None and distributed.is_main_process():
        ticket.save_pretrained(output_dir)


def history_entry(step: int, phase: str, head: torch.Tensor, mlp: torch.Tensor, **values: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "step": step,
        "phase": phase,
        "heads_kept": int(head.sum()),
        "mlps_kept": int(mlp.sum()),
    }
    entry.update(values)
    return entry
