"""Resumable searches: the ticket found so far is written after every step, with the state needed to go on.

The saved ticket records the search config (``extra["search_config"]``) and a fingerprint of the model's weights; a
search resumed from the same folder must agree on both, so a ticket never records a rule it was not found under.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.utils import logging

from .. import distributed
from ..config import TicketSearchConfig
from ..files import TICKET_CONFIG_NAME
from ..structure import unwrap_model
from ..tickets.ticket import LotteryTicket


logger = logging.get_logger(__name__)


@torch.no_grad()
def model_fingerprint(model: nn.Module) -> str:
    """A cheap identity of the weights (per-parameter float64 sums), to refuse resuming on another model.

    ```python
    >>> model = tiny_bert()
    >>> len(model_fingerprint(model)), model_fingerprint(model) == model_fingerprint(model)
    (16, True)

    ```
    """
    sums = [p.detach().double().sum().reshape(1).cpu() for p in unwrap_model(model).parameters()]
    data = torch.cat(sums).numpy().round(6).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def changed_settings(saved: dict[str, Any], config: TicketSearchConfig, method: str) -> list[str]:
    """``"name: old -> new"`` for every setting of `method` that differs between a saved config dict and `config`.

    ```python
    >>> changed_settings({"threshold": 0.9}, TicketSearchConfig(threshold=0.8), "structured")
    ['threshold: 0.9 -> 0.8']

    ```
    """
    fields = config.result_fields(method).items()
    return [f"{name}: {saved[name]!r} -> {value!r}" for name, value in fields if saved.get(name, value) != value]


def load_search_state(
    output_dir: str | os.PathLike | None, model: nn.Module, method: str, config: TicketSearchConfig
) -> LotteryTicket | None:
    """The ticket saved by an interrupted (or finished) search in `output_dir`, or None when there is none.

    Raises a `ValueError` when the saved search ran on other weights, with other settings (listed as
    ``threshold: 0.9 -> 0.8``), or cannot be read.

    ```python
    >>> import tempfile
    >>> model = tiny_bert()
    >>> load_search_state(tempfile.mkdtemp(), model, "structured", TicketSearchConfig()) is None
    True

    ```
    """
    if output_dir is None or not (Path(output_dir) / TICKET_CONFIG_NAME).is_file():
        return None
    try:
        ticket = LotteryTicket.from_pretrained(output_dir)
    except (ValueError, OSError) as err:  # a bad JSON / safetensors file, or the masks file missing
        raise ValueError(
            f"The search state in {output_dir} cannot be read ({err}). It was probably torn by an interrupted write: "
            "delete that folder to start the search over, or pass another `output_dir`."
        ) from err
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
    changes = changed_settings(ticket.extra.get("search_config", {}), config, method)
    if changes:
        raise ValueError(
            f"The {method} search saved in {output_dir} was run with other settings ({'; '.join(changes)}); resuming "
            "would record settings it was not found under. Resume with the saved settings, or use another "
            "`output_dir` (or delete that one) to start over."
        )
    logger.info("Resuming the %s search from %s (step %d).", method, output_dir, len(ticket.history) - 1)
    return ticket


def save_search_state(ticket: LotteryTicket, output_dir: str | os.PathLike | None) -> None:
    """Write the ticket-so-far atomically (main process only; nothing without `output_dir`).

    ```python
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> ticket = LotteryTicket(head_mask=torch.ones(2, 4, dtype=torch.bool), mlp_mask=torch.ones(2, dtype=torch.bool))
    >>> save_search_state(ticket, folder)
    >>> LotteryTicket.from_pretrained(folder).masks_equal(ticket)
    True

    ```
    """
    if output_dir is not None and distributed.is_main_process():
        ticket.save_pretrained(output_dir)


def history_entry(step: int, phase: str, head: torch.Tensor, mlp: torch.Tensor, **values: Any) -> dict[str, Any]:
    """One row of a ticket's search history.

    ```python
    >>> history_entry(1, "heads+mlp", torch.ones(2, 4, dtype=torch.bool), torch.tensor([True, False]), metric=0.5)
    {'step': 1, 'phase': 'heads+mlp', 'heads_kept': 8, 'mlps_kept': 1, 'metric': 0.5}

    ```
    """
    return {"step": step, "phase": phase, "heads_kept": int(head.sum()), "mlps_kept": int(mlp.sum()), **values}
