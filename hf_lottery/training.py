"""Training with a ticket, and ticket searches at the end of training — the logic behind the Trainer integrations.

`TicketTraining` keeps a ticket applied while a model trains: gates on pruned heads/MLPs, pruned weights back to
exactly zero after every optimizer step, a copy of the ticket in every checkpoint folder and its restoration on
resume. `TicketSearch` runs a structured or magnitude search on the trained model. Both are used by the callbacks in
`trainer_callbacks` and by `LotteryTrainer`; neither needs the Trainer object itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import nn
from transformers.utils import logging

from . import distributed
from .files import CHECKPOINT_TICKET_DIR
from .gates import TicketHandle, apply_ticket
from .search.magnitude import find_magnitude_ticket
from .search.data import resolve_search_metric, search_dataloader
from .structure import unwrap_model
from .search.structured import find_structured_ticket
from .ticket import TICKET_CONFIG_NAME, LotteryTicket


logger = logging.get_logger(__name__)


def _as_ticket(ticket: LotteryTicket | str | os.PathLike | None) -> LotteryTicket | None:
    if ticket is None or isinstance(ticket, LotteryTicket):
        return ticket
    return LotteryTicket.from_pretrained(ticket)


class TicketTraining:
    """Keeps `ticket` applied to a model during training (see the module docstring).

    Example:

    ```python
    >>> training = TicketTraining(ticket)
    >>> training.attach(model)            # gates + zeroed weights                       # doctest: +SKIP
    >>> optimizer.step(); training.enforce()   # pruned weights exactly zero again      # doctest: +SKIP
    ```
    """

    def __init__(self, ticket: LotteryTicket | str | os.PathLike | None = None):
        self.ticket = _as_ticket(ticket)
        self.handle: TicketHandle | None = None
        self._model: nn.Module | None = None

    def attach(self, model: nn.Module) -> TicketHandle | None:
        """Apply the ticket to `model` (idempotent); None while no ticket is known yet."""
        model = unwrap_model(model)
        if self.ticket is None:
            return None
        if self.handle is not None and self.handle.is_active and self._model is model:
            return self.handle
        if self.handle is not None:
            self.handle.remove(restore_weights=False)
        self.handle = apply_ticket(model, self.ticket)
        self._model = model
        return self.handle

    def enforce(self) -> None:
        """Put every pruned weight back to exactly zero (after an optimizer step)."""
        if self.handle is not None:
            self.handle.enforce_weight_masks()

    def save_to_checkpoint(self, checkpoint_dir: str | os.PathLike) -> Path | None:
        """Write the ticket into ``checkpoint_dir/hf_lottery_ticket`` (main process only)."""
        if self.ticket is None or not distributed.is_main_process():
            return None
        target = Path(checkpoint_dir) / CHECKPOINT_TICKET_DIR
        self.ticket.save_pretrained(target)
        return target

    def restore_from_checkpoint(self, checkpoint_dir: str | os.PathLike, model: nn.Module | None = None) -> bool:
        """Load the checkpoint's ticket; adopt it when none was given, refuse a different one. True when found."""
        folder = Path(checkpoint_dir) / CHECKPOINT_TICKET_DIR
        if not (folder / TICKET_CONFIG_NAME).is_file():
            return False
        saved = LotteryTicket.from_pretrained(folder)
        if self.ticket is not None and not self.ticket.masks_equal(saved):
            raise ValueError(
                f"The checkpoint {checkpoint_dir} was trained with another ticket than the one given to this run; "
                "resume with the checkpoint's ticket (pass ticket=None to adopt it) or start a new output_dir."
            )
        if self.ticket is None:
            self.ticket = saved
            logger.info("Restored the ticket from %s.", folder)
        if model is not None:
            self.attach(model)
        return True


@dataclass
class TicketSearch:
    """A ticket search to run on a trained model, configured up front (callbacks get no Trainer to ask later).

    Args:
        method: "structured" (heads + MLPs) or "magnitude" (weights).
        dataset: the search data (tokenised `datasets.Dataset`, DataLoader or list of batches) — the dev set as in
            the paper, or a held-out slice of train (then set ``search_data="held-out"``).
        metric: GLUE task name or callable ``(logits, labels) -> float``; or give `compute_metrics` + `metric_key`.
        output_dir: where the ticket is saved (a sub-folder of the Trainer's output_dir by default).
    """

    method: Literal["structured", "magnitude"]
    dataset: Any
    metric: Any = None
    compute_metrics: Callable | None = None
    metric_key: str | None = None
    data_collator: Callable | None = None
    batch_size: int = 32
    threshold: float = 0.9
    search_data: str = "dev"
    output_dir: str | os.PathLike | None = None
    base_model: str | None = None
    task: str | None = None
    seed: int | None = None
    search_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in ("structured", "magnitude"):
            raise ValueError(f"`method` must be 'structured' or 'magnitude'; got {self.method!r}.")
        if self.dataset is None:
            raise ValueError(
                f"The {self.method} ticket search needs its data at construction: callbacks do not receive the "
                "Trainer's eval_dataset. Pass `eval_dataset=` (e.g. the same tokenised dev set you gave the Trainer, "
                "or a held-out slice of train)."
            )
        self.metric = resolve_search_metric(self.metric, self.compute_metrics, self.metric_key)

    def run(
        self, model: nn.Module, processing_class: Any = None, default_output_dir: str | None = None
    ) -> LotteryTicket:
        """Search on `model` (unwrapped from DDP); every process ends with the identical ticket."""
        collator = self.data_collator
        if collator is None and processing_class is not None:
            from transformers import DataCollatorWithPadding

            collator = DataCollatorWithPadding(processing_class)
        if collator is None and not _is_batched(self.dataset):
            raise ValueError(
                "The ticket search needs to batch its dataset: pass `data_collator=` (the one your Trainer uses), or "
                "give the Trainer a `processing_class` (tokenizer) so dynamic padding can be used."
            )
        model = unwrap_model(model)
        loader = search_dataloader(self.dataset, batch_size=self.batch_size, collate_fn=collator, model=model)
        output_dir = self.output_dir or (
            os.path.join(default_output_dir, f"{self.method}_ticket") if default_output_dir else None
        )
        find = find_structured_ticket if self.method == "structured" else find_magnitude_ticket
        base_model = self.base_model or getattr(getattr(model, "config", None), "_name_or_path", None) or None
        return find(
            model, loader, self.metric, threshold=self.threshold, search_data=self.search_data,
            output_dir=output_dir, base_model=base_model, task=self.task, seed=self.seed, **self.search_kwargs,
        )  # fmt: skip


def _is_batched(dataset: Any) -> bool:
    from torch.utils.data import DataLoader

    return isinstance(dataset, DataLoader) or (
        isinstance(dataset, list) and bool(dataset) and isinstance(dataset[0], dict)
    )


def iter_checkpoint_dirs(output_dir: str | os.PathLike) -> Iterable[Path]:
    """Checkpoint folders (``checkpoint-N``) under a Trainer output_dir, oldest first."""
    root = Path(output_dir)
    found = [p for p in root.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))
