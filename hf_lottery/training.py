"""Training with a ticket, and ticket searches at the end of training — the logic behind the Trainer integrations.

`TicketTraining` keeps a ticket applied while a model trains: gates on pruned heads/MLPs, every pruned weight (the
attention-output columns of pruned heads, the output weight and bias of pruned MLPs, magnitude-pruned entries) back
to exactly zero after every optimizer step, a copy of the ticket in every checkpoint folder and its restoration on
resume. `TicketSearch` runs a structured or magnitude search on the trained model with one `TicketSearchConfig`.
Both are used by the callbacks of `hf_lottery.integration` and by `LotteryTrainer`; neither needs the Trainer.

Example:

```python
>>> from hf_lottery.training import metric_name
>>> metric_name("sst2"), metric_name(None, "f1")
('sst2', 'f1')

```
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import nn
from transformers.utils import logging

from . import distributed
from .config import TicketSearchConfig
from .files import CHECKPOINT_TICKET_DIR, CONFIG_BASE_MODEL_KEY
from .gates import TicketHandle, active_handles, apply_ticket
from .metrics import resolve_search_metric
from .search.data import search_dataloader
from .search.magnitude import find_magnitude_ticket
from .search.structured import find_structured_ticket
from .structure import unwrap_model
from .ticket import TICKET_CONFIG_NAME, LotteryTicket
from .ticket_fields import base_model_of


logger = logging.get_logger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"


def _as_ticket(ticket: LotteryTicket | str | os.PathLike | None) -> LotteryTicket | None:
    if ticket is None or isinstance(ticket, LotteryTicket):
        return ticket
    return LotteryTicket.from_pretrained(ticket)


class TicketTraining:
    """Keeps `ticket` applied to a model during training (see the module docstring).

    Example:

    ```python
    >>> import torch
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=20))
    >>> ticket = LotteryTicket.full(model).copy(mlp_mask=torch.tensor([False]), kind="custom")
    >>> training = TicketTraining(ticket)
    >>> handle = training.attach(model)          # gates on, pruned weights zeroed, ticket recorded in the config
    >>> with torch.no_grad():
    ...     _ = model.bert.encoder.layer[0].output.dense.weight.add_(1.0)   # an optimizer step, say
    >>> training.enforce()                       # pruned weights exactly zero again
    >>> int(model.bert.encoder.layer[0].output.dense.weight.abs().sum())
    0

    ```
    """

    def __init__(self, ticket: LotteryTicket | str | os.PathLike | None = None):
        self.ticket = _as_ticket(ticket)
        self.handle: TicketHandle | None = None
        self._model: nn.Module | None = None

    def attach(self, model: nn.Module) -> TicketHandle | None:
        """Apply the ticket to `model` (idempotent; a handle installed elsewhere, e.g. by `rewind`, is adopted)."""
        model = unwrap_model(model)
        if self.ticket is None:
            return None
        if self.handle is not None and self.handle.is_active and self._model is model:
            return self.handle
        if self.handle is not None:
            self.handle.remove(restore_weights=False)
        same = [h for h in active_handles(model) if h.ticket is not None and h.ticket.masks_equal(self.ticket)]
        self.handle = same[-1] if same else apply_ticket(model, self.ticket)
        self._model = model
        return self.handle

    def adopt(self, handle: TicketHandle) -> None:
        """Use a handle already installed (e.g. by `rewind`) instead of applying the ticket a second time."""
        self.ticket, self.handle, self._model = handle.ticket, handle, handle.model

    def enforce(self) -> None:
        """Put every pruned weight back to exactly zero (after an optimizer step): one fused multiply."""
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


def checkpoint_for_step(output_dir: str | os.PathLike, global_step: int) -> Path | None:
    """The ``checkpoint-*`` folder under `output_dir` whose ``trainer_state.json`` has `global_step` (newest first)."""
    root = Path(output_dir)
    if not root.is_dir():
        return None
    for folder in sorted(iter_checkpoint_dirs(root), key=lambda p: p.stat().st_mtime, reverse=True):
        state_file = folder / TRAINER_STATE_NAME
        try:
            step = json.loads(state_file.read_text()).get("global_step")
        except (OSError, ValueError):
            continue
        if step == global_step:
            return folder
    return None


def resumed_checkpoint(args: Any, global_step: int) -> Path | None:
    """The checkpoint a Trainer resumed from: ``args.resume_from_checkpoint`` when it names a folder, else the
    ``checkpoint-*`` folder of ``args.output_dir`` whose ``trainer_state.json`` records the resumed `global_step`."""
    given = getattr(args, "resume_from_checkpoint", None)
    if isinstance(given, (str, os.PathLike)) and Path(given).is_dir():
        return Path(given)
    return checkpoint_for_step(args.output_dir, global_step)


def iter_checkpoint_dirs(output_dir: str | os.PathLike) -> Iterable[Path]:
    """Checkpoint folders (``checkpoint-N``) under a Trainer output_dir, oldest first."""
    root = Path(output_dir)
    found = [p for p in root.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


# ---------------------------------------------------------------------- provenance
def record_base_model(model: nn.Module, base_model: str | os.PathLike | None = None) -> str | None:
    """Write the pre-trained id into ``model.config.hf_lottery_base_model`` when fine-tuning starts (if absent).

    `base_model` wins; otherwise ``config._name_or_path`` (what the model was loaded from, before any training).
    Returns the recorded value (a str; paths are accepted).
    """
    config = getattr(unwrap_model(model), "config", None)
    if config is None:
        return None
    recorded = getattr(config, CONFIG_BASE_MODEL_KEY, None)
    if base_model is not None:
        recorded = str(base_model)
    elif not recorded:
        recorded = getattr(config, "_name_or_path", None) or None
    if recorded:
        setattr(config, CONFIG_BASE_MODEL_KEY, str(recorded))
    return recorded


def resolve_base_model(model: nn.Module, base_model: str | os.PathLike | None = None) -> str | None:
    """The pre-trained model a ticket found on `model` rewinds to (`base_model_of`); a warning when unknown."""
    return base_model_of(unwrap_model(model), base_model, how_to_record="Pass `base_model=` to record it.")


def task_name(metric: Any) -> str | None:
    """The GLUE task a metric names (``"sst2"``, ``"SST-2"``), or None for callables and unknown names."""
    if not isinstance(metric, str):
        return None
    from .metrics import get_task_metric

    try:
        return get_task_metric(metric).task
    except (KeyError, ValueError):
        return None


def metric_name(metric: Any, metric_key: str | None = None) -> str | None:
    """A short name of the stop-rule metric: the task name, the `compute_metrics` key, or the callable's name."""
    if isinstance(metric, str):
        return metric
    if metric is None or metric_key:
        return metric_key
    return getattr(metric, "__name__", None) or getattr(metric, "name", None) or type(metric).__name__


def search_log_entry(ticket: LotteryTicket) -> dict[str, float]:
    """Scalars of a finished search for the Trainer's `log` (``log_history``, TensorBoard, W&B, ...)."""
    prefix = f"lottery/{ticket.method}"
    summary = ticket.summary()
    values = {
        f"{prefix}_metric": ticket.metrics.get("metric"),
        f"{prefix}_full_metric": ticket.metrics.get("full_metric"),
        f"{prefix}_sparsity": ticket.sparsity,
        f"{prefix}_heads_kept": summary["kept_heads"],
        f"{prefix}_mlps_kept": summary["kept_mlps"],
        f"{prefix}_steps": max(len(ticket.history) - 1, 0),
    }
    return {key: float(value) for key, value in values.items() if value is not None}


# ---------------------------------------------------------------------- searches
@dataclass
class TicketSearch:
    """A ticket search to run on a trained model, configured up front (callbacks get no Trainer to ask later).

    Args:
        method: "structured" (heads + MLPs) or "magnitude" (weights).
        dataset: the search data (tokenised `datasets.Dataset`, DataLoader or list of batches) — the dev set as in
            the paper, or a held-out slice of train (then set ``config.search_data="held-out"``).
        metric: GLUE task name or callable ``(logits, labels) -> float``; or give `compute_metrics` + `metric_key`.
        config: every search setting (`TicketSearchConfig`).
        output_dir: where the ticket is saved (a sub-folder of the Trainer's output_dir by default).
    """

    method: Literal["structured", "magnitude"]
    dataset: Any
    metric: Any = None
    compute_metrics: Callable | None = None
    metric_key: str | None = None
    data_collator: Callable | None = None
    config: TicketSearchConfig = field(default_factory=TicketSearchConfig)
    output_dir: str | os.PathLike | None = None
    base_model: str | os.PathLike | None = None
    task: str | None = None
    seed: int | None = None

    def __post_init__(self):
        if self.method not in ("structured", "magnitude"):
            raise ValueError(f"`method` must be 'structured' or 'magnitude'; got {self.method!r}.")
        if self.dataset is None:
            raise ValueError(
                f"The {self.method} ticket search needs its data at construction: callbacks do not receive the "
                "Trainer's eval_dataset. Pass `eval_dataset=` (e.g. the same tokenised dev set you gave the Trainer, "
                "or a held-out slice of train)."
            )
        self.metric_name = metric_name(self.metric, self.metric_key)
        self.task = self.task or task_name(self.metric)
        self.metric = resolve_search_metric(self.metric, self.compute_metrics, self.metric_key)

    def run(
        self,
        model: nn.Module,
        processing_class: Any = None,
        default_output_dir: str | None = None,
        *,
        seed: int | None = None,
        progress: bool = True,
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
        loader = search_dataloader(
            _capped(self.dataset, self.config.max_search_samples), batch_size=self.config.search_batch_size,
            collate_fn=collator, model=model,
        )  # fmt: skip
        output_dir = self.output_dir or (
            os.path.join(default_output_dir, f"{self.method}_ticket") if default_output_dir else None
        )
        find = find_structured_ticket if self.method == "structured" else find_magnitude_ticket
        ticket = run_search(
            find, model, loader, self.metric, self.config, output_dir=output_dir,
            base_model=resolve_base_model(model, self.base_model), task=self.task,
            seed=self.seed if self.seed is not None else seed, progress=progress,
        )  # fmt: skip
        return self._record(ticket, output_dir)

    def _record(self, ticket: LotteryTicket, output_dir: str | os.PathLike | None) -> LotteryTicket:
        """Add what the Trainer side knows (metric name, search config) when the search did not record it."""
        missing = {}
        if self.metric_name and ticket.extra.get("metric_name") != self.metric_name:
            missing["metric_name"] = self.metric_name
        if "search_config" not in ticket.extra and "config" not in ticket.extra.get("search", {}):
            missing["search_config"] = self.config.to_dict()
        if not missing:
            return ticket
        ticket = ticket.copy(extra={**ticket.extra, **missing})
        if output_dir is not None and distributed.is_main_process():
            ticket.save_pretrained(output_dir)
        return ticket


def run_search(
    find: Callable[..., LotteryTicket],
    model: nn.Module,
    loader: Iterable,
    metric: Any,
    config: TicketSearchConfig,
    **common: Any,
) -> LotteryTicket:
    """Call `find_structured_ticket` / `find_magnitude_ticket` with `config`."""
    return find(model, loader, metric, config=config, **common)


def _capped(dataset: Any, cap: int | None) -> Any:
    if cap is None or _is_batched(dataset) or not hasattr(dataset, "__len__") or len(dataset) <= cap:
        return dataset
    if hasattr(dataset, "select"):
        return dataset.select(range(cap))
    from torch.utils.data import Subset

    return Subset(dataset, range(cap))


def _is_batched(dataset: Any) -> bool:
    from torch.utils.data import DataLoader

    return isinstance(dataset, DataLoader) or (
        isinstance(dataset, list) and bool(dataset) and isinstance(dataset[0], dict)
    )
