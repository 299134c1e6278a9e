"""Lottery tickets in an unchanged `transformers.Trainer`: ``Trainer(..., callbacks=[...])``.

`TicketCallback` trains with a ticket applied (`TicketTraining`); `StructuredPruningCallback` and
`MagnitudePruningCallback` run a search (`TicketSearch`) when training ends; `PushToHubCallback` then publishes the
ticket (and the masked model). `LotteryTrainer` adds the same callbacks to itself; `trainer_callbacks` re-exports them.
A callback receives no Trainer from transformers: give it one with ``callback.attach(trainer)`` (or ``trainer=``) and
its search results go through `Trainer.log` to ``log_history`` and every ``report_to`` integration; without one they
reach ``state.log_history`` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import nn
from torch.utils.data import DataLoader, Subset
from transformers import DataCollatorWithPadding, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging

from . import distributed
from .config import TicketSearchConfig, resolve_search_config
from .files import CHECKPOINT_TICKET_DIR, TICKET_CONFIG_NAME
from .gates import TicketHandle, active_handles, applied_ticket, apply_ticket
from .hub.push import push_ticket_to_hub, push_to_hub
from .provenance import base_model_of, record_base_model
from .search.dataloader import search_dataloader
from .search.magnitude import find_magnitude_ticket
from .search.structured import find_structured_ticket
from .structure import unwrap_model
from .tasks.metrics import resolve_search_metric
from .tickets.ticket import LotteryTicket, weight_masks_sha256


logger = logging.get_logger(__name__)

__all__ = ["MagnitudePruningCallback", "PushToHubCallback", "StructuredPruningCallback", "TicketCallback"]

SEARCHES = {"structured": find_structured_ticket, "magnitude": find_magnitude_ticket}
STATE_KEY = "hf_lottery_ticket_sha256"  # in TrainerState.stateful_callbacks: the ticket a checkpoint was trained with

# The set-up of the three Trainer examples below (substituted for "{setup}").
_EXAMPLE_SETUP = """    >>> import tempfile, torch
    >>> from transformers import Trainer, TrainingArguments
    >>> _ = torch.manual_seed(0)
    >>> model = tiny_bert(vocab_size=50, hidden_size=16, num_attention_heads=2, intermediate_size=20)
    >>> data, collate, dev = tiny_data()  # 8 rows, their collator, a dev DataLoader (or a tokenised Dataset)
    >>> args = TrainingArguments(tempfile.mkdtemp(), max_steps=2, per_device_train_batch_size=4, report_to="none",
    ...                          use_cpu=True, disable_tqdm=True, save_strategy="no")"""


def _sha256(ticket: LotteryTicket) -> str:
    return weight_masks_sha256({"head_mask": ticket.head_mask, "mlp_mask": ticket.mlp_mask, **ticket.weight_masks})


def _as_ticket(ticket: LotteryTicket | str | os.PathLike | None) -> LotteryTicket | None:
    if ticket is None or isinstance(ticket, LotteryTicket):
        return ticket
    return LotteryTicket.from_pretrained(ticket)


class TicketTraining:
    """Keeps `ticket` applied to a model during training (see the module docstring).

    Example:

    ```python
    >>> import torch
    >>> model = tiny_bert(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20)
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
        return self.ticket.save_pretrained(Path(checkpoint_dir) / CHECKPOINT_TICKET_DIR)

    def restore_from_checkpoint(self, args: Any, model: nn.Module | None = None, sha256: str | None = None) -> None:
        """Take the ticket of the checkpoint the Trainer resumes (``args.resume_from_checkpoint`` if it is a folder,
        else the Trainer's own choice, the last ``checkpoint-N`` of ``args.output_dir``): `sha256`, from its trainer
        state, names the ticket, its copy in ``hf_lottery_ticket/`` holds it. Adopt it when none was given; refuse
        another or a lost one (a folder given to `train()` alone is not seen by callbacks: the sha256 checks)."""
        given = getattr(args, "resume_from_checkpoint", None)
        checkpoint = given if isinstance(given, (str, os.PathLike)) and Path(given).is_dir() else None
        checkpoint = checkpoint or (get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None)
        folder = Path(checkpoint or ".") / CHECKPOINT_TICKET_DIR
        has_copy = checkpoint is not None and (folder / TICKET_CONFIG_NAME).is_file()
        copy = LotteryTicket.from_pretrained(folder) if has_copy else None
        if (sha256 := sha256 or (copy and _sha256(copy))) is None:  # older checkpoints record no sha256: the copy
            return
        self.ticket = copy if self.ticket is None and copy is not None and _sha256(copy) == sha256 else self.ticket
        if self.ticket is None or _sha256(self.ticket) != sha256:
            found = "another ticket than the one given" if self.ticket else f"a ticket, but {folder} holds no copy"
            raise ValueError(
                f"The checkpoint resumed ({checkpoint}) was trained with {found}: give this run that ticket (or "
                "ticket=None to adopt the checkpoint's copy), name its folder in the TrainingArguments' "
                "`resume_from_checkpoint`, or start a new output_dir."
            )
        if model is not None:
            self.attach(model)


def log_search(ticket: LotteryTicket, trainer: Any = None, state: Any = None) -> None:
    """Log a finished search's scalars through ``trainer.log`` (``log_history`` and ``report_to``: TensorBoard, W&B,
    ...), or append them to ``state.log_history`` when there is no Trainer."""
    summary = ticket.summary()
    values = {
        "metric": ticket.metrics.get("metric"),
        "full_metric": ticket.metrics.get("full_metric"),
        "sparsity": ticket.sparsity,
        "heads_kept": summary["kept_heads"],
        "mlps_kept": summary["kept_mlps"],
        "steps": max(len(ticket.history) - 1, 0),
    }
    logs = {f"lottery/{ticket.method}_{key}": float(value) for key, value in values.items() if value is not None}
    if trainer is not None:
        trainer.log(logs)
    elif state is not None:
        state.log_history.append({**logs, "step": state.global_step})


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
        self.metric = resolve_search_metric(self.metric, self.compute_metrics, self.metric_key)

    def refuse_ticketed(self, model: nn.Module) -> None:
        """A search starts from every head, MLP and weight: on a model with a ticket it could revive pruned ones."""
        if applied_ticket(model) is not None:
            raise ValueError(
                f"The {self.method} ticket search cannot run on a model that carries a ticket (TicketCallback, "
                "from_ticket, a pruned model): it would start from the full model and could revive what the ticket "
                "prunes. Search the dense fine-tuned model; train with a ticket without a search callback."
            )

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
            collator = DataCollatorWithPadding(processing_class)
        if collator is None and not _is_batched(self.dataset):
            raise ValueError(
                "The ticket search needs to batch its dataset: pass `data_collator=` (the one your Trainer uses), or "
                "give the Trainer a `processing_class` (tokenizer) so dynamic padding can be used."
            )
        model = unwrap_model(model)
        self.refuse_ticketed(model)
        dataset, cap = self.dataset, self.config.max_search_samples
        if cap is not None and not _is_batched(dataset) and hasattr(dataset, "__len__") and len(dataset) > cap:
            dataset = dataset.select(range(cap)) if hasattr(dataset, "select") else Subset(dataset, range(cap))
        loader = search_dataloader(dataset, batch_size=self.config.search_batch_size, collate_fn=collator, model=model)
        default = os.path.join(default_output_dir, f"{self.method}_ticket") if default_output_dir else None
        return SEARCHES[self.method](
            model, loader, self.metric, config=self.config, output_dir=self.output_dir or default,
            base_model=base_model_of(model, self.base_model), task=self.task,
            seed=self.seed if self.seed is not None else seed, progress=progress,
        )  # fmt: skip


def _is_batched(dataset: Any) -> bool:
    return isinstance(dataset, DataLoader) or (
        isinstance(dataset, list) and bool(dataset) and isinstance(dataset[0], dict)
    )


class TicketCallback(TrainerCallback):
    r"""Train (and evaluate) with a ticket applied: pruned heads and MLPs stay off, pruned weights stay exactly zero.

    The ticket is applied when the Trainer is created (or when training starts) and baked into the weights (see
    `hf_lottery.gates`), re-zeroed after every optimizer step: every checkpoint, ``trainer.save_model()`` and
    ``model.save_pretrained()`` hold the pruned model. A copy of the ticket is written into every checkpoint folder
    (``checkpoint-N/hf_lottery_ticket``) and ``output_dir``, and restored on resume (no callback state needed).

    Args:
        ticket: a `LotteryTicket`, a ticket folder / Hub id, or None to take the ticket from the checkpoint resumed.
        required: raise when training starts without a ticket (False: train without one).
        handle: a ticket already applied (what `rewind` returns): kept as it is instead of applied a second time.
        save_copies: write the ticket into every checkpoint and ``output_dir`` (False where the caller saves it).

    Example:

    ```python
    {setup}
    >>> from hf_lottery import LotteryTicket
    >>> ticket = LotteryTicket.full(model).copy(head_mask=torch.tensor([[True, False], [True, True]]), kind="custom")
    >>> trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate,
    ...                   callbacks=[TicketCallback(ticket)])
    >>> _ = trainer.train()   # the Trainer prints its logs when disable_tqdm=True
    {...}
    >>> int(model.bert.encoder.layer[0].attention.output.dense.weight[:, 8:].abs().sum())   # head 1 of layer 0
    0

    ```
    """

    def __init__(
        self,
        ticket: LotteryTicket | str | os.PathLike | None = None,
        *,
        required: bool = True,
        handle: TicketHandle | None = None,
        save_copies: bool = True,
    ):
        self.training = TicketTraining(ticket)
        self.required = required
        self.save_copies = save_copies
        if handle is not None:
            self.training.adopt(handle)

    @property
    def ticket(self) -> LotteryTicket | None:
        return self.training.ticket

    @property
    def handle(self):
        return self.training.handle

    def on_init_end(self, args, state, control, model=None, **kwargs):
        if model is not None:
            self.training.attach(model)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        distributed.check_world_size(args.world_size)
        record_base_model(model)
        if state.global_step > 0:  # resuming: the Trainer loaded the checkpoint's trainer_state.json
            self.training.restore_from_checkpoint(args, model, state.stateful_callbacks.get(STATE_KEY))
        if self.ticket is None:
            if not self.required:
                return
            raise ValueError("TicketCallback needs a ticket: pass one, or resume from a checkpoint trained with one.")
        self.training.attach(model)
        self.training.enforce()
        state.stateful_callbacks[STATE_KEY] = _sha256(self.ticket)  # saved in every checkpoint's trainer state

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.training.enforce()

    def on_save(self, args, state, control, **kwargs):
        if self.save_copies:
            self.training.save_to_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.save_copies:
            self.training.save_to_checkpoint(args.output_dir)


class _SearchCallback(TrainerCallback):
    method = "structured"

    def __init__(
        self,
        eval_dataset: Any = None,
        metric: Any = None,
        *,
        compute_metrics: Callable | None = None,
        metric_key: str | None = None,
        data_collator: Callable | None = None,
        config: TicketSearchConfig | None = None,
        output_dir: str | os.PathLike | None = None,
        base_model: str | os.PathLike | None = None,
        task: str | None = None,
        seed: int | None = None,
        trainer: Any = None,
        **settings: Any,
    ):
        self.config = resolve_search_config(config, **settings)  # an unknown or bad setting fails here, not later
        self.search = TicketSearch(
            method=self.method, dataset=eval_dataset, metric=metric, compute_metrics=compute_metrics,
            metric_key=metric_key, data_collator=data_collator, config=self.config, output_dir=output_dir,
            base_model=base_model, task=task, seed=seed,
        )  # fmt: skip
        self.ticket: LotteryTicket | None = None
        self.ticket_dir: str | None = None
        self.trainer = trainer

    def attach(self, trainer: Any) -> None:
        """Give the callback its Trainer, whose `log` carries the search results to ``report_to``."""
        self.trainer = trainer

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        distributed.check_world_size(args.world_size)
        record_base_model(model)
        self.search.refuse_ticketed(model)  # before training, not after

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        self.ticket = self.search.run(
            model, processing_class, default_output_dir=args.output_dir, seed=args.seed, progress=not args.disable_tqdm
        )
        self.ticket_dir = str(self.search.output_dir or os.path.join(args.output_dir, f"{self.method}_ticket"))
        logger.info("%s ticket saved in %s: %r", self.method.capitalize(), self.ticket_dir, self.ticket)
        log_search(self.ticket, self.trainer, state)


class StructuredPruningCallback(_SearchCallback):
    r"""Find a structured ticket (heads + MLPs, importance pruning, 90 % stop rule) when training ends.

    Callbacks get no `eval_dataset` or `compute_metrics` from the Trainer, so give them here (see `TicketSearch`).
    Search settings are `TicketSearchConfig` fields, given as ``config=`` and/or by name (``threshold=0.8``), validated
    here. The ticket (with the Trainer's seed, the task and the metric) is saved in ``output_dir/structured_ticket``
    (resumable) and exposed as ``callback.ticket``; its figures reach ``log_history`` and ``report_to``.

    Example:

    ```python
    {setup}
    >>> accuracy = lambda logits, labels: float((logits.argmax(-1) == labels).mean())
    >>> pruning = StructuredPruningCallback(eval_dataset=dev, metric=accuracy, structured_max_steps=1,
    ...                                     on_degenerate="ignore", base_model="bert-base-uncased")
    >>> _ = Trainer(model=model, args=args, train_dataset=data, data_collator=collate, callbacks=[pruning]).train()
    {...}
    >>> pruning.ticket.method, pruning.ticket.seed
    ('structured', 42)
    >>> StructuredPruningCallback(eval_dataset=data, metric="sst2", thresold=0.8)
    Traceback (most recent call last):
    ...
    TypeError: Unknown search setting(s) ['thresold']; ...

    ```
    """

    method = "structured"


class MagnitudePruningCallback(_SearchCallback):
    r"""Find a magnitude ticket (global iterative magnitude pruning, 90 % stop rule) when training ends.

    Same arguments as `StructuredPruningCallback` (e.g. ``magnitude_prune_fraction``, ``magnitude_max_steps``).
    Saved in ``output_dir/magnitude_ticket``.

    Example:

    ```python
    {setup}
    >>> accuracy = lambda logits, labels: float((logits.argmax(-1) == labels).mean())
    >>> pruning = MagnitudePruningCallback(eval_dataset=dev, metric=accuracy, magnitude_max_steps=2,
    ...                                    on_degenerate="ignore", base_model="bert-base-uncased")
    >>> trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate, callbacks=[pruning])
    >>> _ = trainer.train()
    {...}
    >>> sorted(k for k in trainer.state.log_history[-1] if k.startswith("lottery/"))[:2]
    ['lottery/magnitude_full_metric', 'lottery/magnitude_heads_kept']

    ```
    """

    method = "magnitude"


for _cls in (TicketCallback, StructuredPruningCallback, MagnitudePruningCallback):
    _cls.__doc__ = _cls.__doc__.replace("    {setup}", _EXAMPLE_SETUP)


def _latest_eval_metrics(state: Any) -> dict[str, float] | None:
    """The metrics (not loss, time or throughput) of the last evaluation in ``state.log_history``, or None."""
    for entry in reversed(state.log_history):
        if found := {k[5:]: v for k, v in entry.items() if k.startswith("eval_") and isinstance(v, float)}:
            return {k: v for k, v in found.items() if not k.endswith(("loss", "runtime", "_second", "_time"))} or None
    return None


class PushToHubCallback(TrainerCallback):
    r"""Push a ticket (and optionally the masked model, card and plots) to the Hub when training ends.

    Args:
        repo_id: the Hub repository; default ``args.hub_model_id``.
        ticket: a `LotteryTicket`, a folder, or a pruning / ticket callback listed *before* this one in
            ``callbacks=[...]`` (its ticket is read when training ends).
        push_model: push the trained weights with the ticket baked in (plain ``from_pretrained`` gives the pruned
            model), plus card and plots; False pushes the ticket files only, like an adapter.
        private, revision, token, commit_message: passed to the Hub; `private` and `token` default to the Trainer's
            ``hub_private_repo`` and ``hub_token``. Tokens are never logged.

    Files are staged in ``output_dir/hub_staging``; the results pushed are the last evaluation's metrics (no loss, time
    or throughput). A failed push is logged as an error (the reason, the staging folder kept); training's result stays.

    Example:

    ```python
    >>> pruning = StructuredPruningCallback(eval_dataset=[{"input_ids": [1]}], metric="sst2")
    >>> push = PushToHubCallback("me/bert-sst2-ticket", ticket=pruning)
    >>> push.repo_id
    'me/bert-sst2-ticket'

    ```
    """

    def __init__(
        self,
        repo_id: str | None = None,
        ticket: Any = None,
        *,
        push_model: bool = True,
        private: bool | None = None,
        revision: str | None = None,
        token: str | None = None,
        commit_message: str | None = None,
    ):
        if ticket is None:
            raise ValueError("PushToHubCallback needs `ticket=`: a LotteryTicket, a folder, or a pruning callback.")
        self.repo_id = repo_id
        self.source = ticket
        self.push_model = push_model
        self.private = private
        self.revision = revision
        self.token = token
        self.commit_message = commit_message
        self.pushed_url: str | None = None

    def __repr__(self) -> str:  # never show the token
        return f"PushToHubCallback(repo_id={self.repo_id!r}, push_model={self.push_model})"

    def _ticket(self) -> LotteryTicket:
        source = self.source.ticket if isinstance(self.source, (TicketCallback, _SearchCallback)) else self.source
        if source is None:
            raise ValueError("PushToHubCallback has no ticket to push: the pruning callback has not produced one yet.")
        return _as_ticket(source)

    def hub_settings(self, args: Any) -> dict[str, Any]:
        """repo id, privacy and token: this callback's, else the Trainer's ``hub_*`` arguments."""
        repo_id = self.repo_id or getattr(args, "hub_model_id", None)
        if not repo_id:
            raise ValueError("PushToHubCallback needs a repo: pass `repo_id=` or set the Trainer's `hub_model_id`.")
        private = self.private if self.private is not None else getattr(args, "hub_private_repo", None)
        token = self.token if self.token is not None else getattr(args, "hub_token", None)
        return {"repo_id": repo_id, "private": private, "token": token}

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not distributed.is_main_process():
            return
        try:  # a failed push never loses training's result: it is logged, and the staging folder kept
            ticket = self._ticket()
            settings = {**self.hub_settings(args), "revision": self.revision, "commit_message": self.commit_message}
            if self.push_model:  # the metrics of the weights pushed, not of the search
                self.pushed_url = push_to_hub(
                    unwrap_model(model), ticket, tokenizer=processing_class, metrics=_latest_eval_metrics(state),
                    staging_dir=os.path.join(args.output_dir, "hub_staging"), **settings,
                )  # fmt: skip
            else:
                self.pushed_url = push_ticket_to_hub(ticket, **settings)
            logger.info("Pushed the %s ticket to %s.", ticket.method, settings["repo_id"])
        except Exception as err:
            logger.error("PushToHubCallback: the push to %s failed: %s", self.repo_id or args.hub_model_id, err)
