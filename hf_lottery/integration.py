"""Callbacks that add lottery tickets to an unchanged `transformers.Trainer`: ``Trainer(..., callbacks=[...])``.

They are thin: the logic lives in `hf_lottery.training`, the searches and the Hub code. `trainer_callbacks`
re-exports them, and `LotteryTrainer` adds the same callbacks to itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import CallbackHandler
from transformers.utils import logging

from . import distributed, hub
from .config import TicketSearchConfig, resolve_search_config
from .files import CHECKPOINT_TICKET_DIR
from .structure import unwrap_model
from .ticket import LotteryTicket
from .training import TicketSearch, TicketTraining, record_base_model, resumed_checkpoint, search_log_entry


logger = logging.get_logger(__name__)

__all__ = ["MagnitudePruningCallback", "PushToHubCallback", "StructuredPruningCallback", "TicketCallback"]

_EXAMPLE_SETUP = """
    >>> import tempfile, torch
    >>> from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
    ...     num_attention_heads=2, intermediate_size=20))
    >>> data = [{"input_ids": [1, 5, 7, 2], "labels": i % 2} for i in range(8)]
    >>> collate = lambda rows: {"input_ids": torch.tensor([r["input_ids"] for r in rows]),
    ...                         "labels": torch.tensor([r["labels"] for r in rows])}
    >>> dev = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=collate)   # or a tokenised datasets.Dataset
    >>> args = TrainingArguments(tempfile.mkdtemp(), max_steps=2, per_device_train_batch_size=4, report_to="none",
    ...                          use_cpu=True, disable_tqdm=True, save_strategy="no")"""


def _log(args: Any, state: Any, control: Any, logs: dict[str, float], log: Callable | None) -> None:
    """Send `logs` through the Trainer's logging: ``state.log_history`` and every callback's ``on_log``.

    `log` is the Trainer's own `log` (LotteryTrainer passes it). For a plain Trainer, a callback does not receive the
    Trainer, but its events are dispatched by the Trainer's `CallbackHandler`, which is then the caller's ``self``:
    its ``on_log`` reaches the `report_to` integrations (TensorBoard, W&B, ...).
    """
    if not logs:
        return
    if log is not None:
        log(dict(logs))
        return
    state.log_history.append({**logs, "step": state.global_step})
    handler = _calling_handler()
    if handler is not None:
        handler.on_log(args, state, control, logs=dict(logs))


def _calling_handler() -> CallbackHandler | None:
    frame = sys._getframe()
    for _ in range(8):
        frame = frame.f_back
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, CallbackHandler):
            return owner
    return None


class TicketCallback(TrainerCallback):
    r"""Train (and evaluate) with a ticket applied: pruned heads and MLPs stay off, pruned weights stay exactly zero.

    The ticket is applied when the Trainer is created (or when training starts) and baked into the weights: pruned
    heads' attention-output columns, pruned MLPs' output weight and bias and magnitude-pruned weights are held at
    exactly zero after every optimizer step (their gradients are zeroed too), and the ticket is recorded in
    ``model.config.hf_lottery_ticket``. So every checkpoint, ``trainer.save_model()`` and ``model.save_pretrained()``
    hold the pruned model: a plain ``from_pretrained`` of them gives the pruned outputs. A copy of the ticket is also
    written into every checkpoint folder (``checkpoint-N/hf_lottery_ticket``) and into ``output_dir`` at the end, and
    it is restored on ``trainer.train(resume_from_checkpoint=...)`` without `restore_callback_states_from_checkpoint`.

    Args:
        ticket: a `LotteryTicket`, a ticket folder / Hub id, or None to take the ticket from the checkpoint resumed.
        required: raise when training starts without a ticket (False: train without one).

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

    def __init__(self, ticket: LotteryTicket | str | os.PathLike | None = None, *, required: bool = True):
        self.training = TicketTraining(ticket)
        self.required = required

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
            checkpoint = resumed_checkpoint(args, state.global_step)
            found = checkpoint is not None and self.training.restore_from_checkpoint(checkpoint, model)
            if not found and self.ticket is None and self.required:
                raise ValueError(
                    f"TicketCallback got no ticket and the checkpoint resumed at step {state.global_step} "
                    f"({checkpoint or 'not found under ' + str(args.output_dir)}) holds none "
                    f"({CHECKPOINT_TICKET_DIR}/ missing)."
                )
        if self.ticket is None:
            if not self.required:
                return
            raise ValueError("TicketCallback needs a ticket: pass one, or resume from a checkpoint that holds one.")
        self.training.attach(model)
        self.training.enforce()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.training.enforce()

    def on_save(self, args, state, control, **kwargs):
        self.training.save_to_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_train_end(self, args, state, control, **kwargs):
        self.training.save_to_checkpoint(args.output_dir)


TicketCallback.__doc__ = TicketCallback.__doc__.replace("    {setup}", _EXAMPLE_SETUP.strip("\n"))


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
        self.trainer_log: Callable[[dict[str, float]], None] | None = None  # set by LotteryTrainer

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        distributed.check_world_size(args.world_size)
        record_base_model(model)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        self.ticket = self.search.run(
            model, processing_class, default_output_dir=args.output_dir, seed=args.seed,
            progress=not args.disable_tqdm,
        )  # fmt: skip
        self.ticket_dir = str(self.search.output_dir or os.path.join(args.output_dir, f"{self.method}_ticket"))
        logger.info("%s ticket saved in %s: %r", self.method.capitalize(), self.ticket_dir, self.ticket)
        _log(args, state, control, search_log_entry(self.ticket), self.trainer_log)


class StructuredPruningCallback(_SearchCallback):
    r"""Find a structured ticket (heads + MLPs, importance pruning, 90 % stop rule) when training ends.

    The Trainer does not hand its `eval_dataset` or `compute_metrics` to callbacks, so give them here: the same
    tokenised dev set (as in the paper) or a held-out slice of train (``search_data="held-out"``), and either a
    GLUE task name (``metric="sst2"``) or ``compute_metrics=your_fn, metric_key="accuracy"``. Search settings are
    `TicketSearchConfig` fields, given as ``config=`` and/or by name (``threshold=0.8``); they are validated here, at
    construction. The ticket is saved in ``output_dir/structured_ticket`` (resumable), exposed as
    ``callback.ticket``, records the Trainer's seed, the task and the metric, and its figures reach the Trainer's
    ``log_history`` and ``report_to`` integrations (``lottery/structured_metric``, ...).

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


for _cls in (StructuredPruningCallback, MagnitudePruningCallback):
    _cls.__doc__ = _cls.__doc__.replace("    {setup}", _EXAMPLE_SETUP.strip("\n"))


def _latest_eval_metrics(state: Any) -> dict[str, float] | None:
    """The last evaluation of the trained weights in ``state.log_history`` (``eval_*`` keys), or None."""
    for entry in reversed(state.log_history):
        found = {k[len("eval_") :]: v for k, v in entry.items() if k.startswith("eval_") and isinstance(v, float)}
        if found:
            return found
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

    The files are staged in ``output_dir/hub_staging``. A failed push raises after training; the local results
    (checkpoints, tickets) stay where they are.

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
        source = self.source
        if isinstance(source, (TicketCallback, _SearchCallback)):
            source = source.ticket
        if source is None:
            raise ValueError("PushToHubCallback has no ticket to push: the pruning callback has not produced one yet.")
        return source if isinstance(source, LotteryTicket) else LotteryTicket.from_pretrained(source)

    def hub_settings(self, args: Any) -> dict[str, Any]:
        """repo id, privacy and token: this callback's, else the Trainer's ``hub_model_id`` / ``hub_private_repo`` /
        ``hub_token``."""
        repo_id = self.repo_id or getattr(args, "hub_model_id", None)
        if not repo_id:
            raise ValueError("PushToHubCallback needs a repo: pass `repo_id=` or set the Trainer's `hub_model_id`.")
        private = self.private if self.private is not None else getattr(args, "hub_private_repo", None)
        token = self.token if self.token is not None else getattr(args, "hub_token", None)
        return {"repo_id": repo_id, "private": private, "token": token}

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not distributed.is_main_process():
            return
        ticket = self._ticket()
        settings = self.hub_settings(args)
        common = dict(
            private=settings["private"], revision=self.revision, token=settings["token"],
            commit_message=self.commit_message,
        )  # fmt: skip
        if self.push_model:
            common["metrics"] = _latest_eval_metrics(state)  # of the weights pushed, not of the search
            self.pushed_url = hub.push_to_hub(
                unwrap_model(model), ticket, settings["repo_id"], tokenizer=processing_class,
                staging_dir=os.path.join(args.output_dir, "hub_staging"), **common,
            )  # fmt: skip
        else:
            self.pushed_url = hub.push_ticket_to_hub(ticket, settings["repo_id"], **common)
        logger.info("Pushed the %s ticket to %s.", ticket.method, settings["repo_id"])
