"""Callbacks that add lottery tickets to an unchanged `transformers.Trainer`: ``Trainer(..., callbacks=[...])``.

They are thin: the logic lives in `hf_lottery` (`hf_lottery.training`, the searches and the Hub code).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.utils import logging

from . import distributed
from .structure import unwrap_model
from .ticket import LotteryTicket
from .training import CHECKPOINT_TICKET_DIR, TicketSearch, TicketTraining


logger = logging.get_logger(__name__)

__all__ = ["MagnitudePruningCallback", "PushToHubCallback", "StructuredPruningCallback", "TicketCallback"]


class TicketCallback(TrainerCallback):
    r"""Train (and evaluate) with a ticket applied: pruned heads and MLPs stay off, pruned weights stay exactly zero.

    The ticket is applied when the Trainer is created (or when training starts), pruned weights are re-zeroed after
    every optimizer step (so any optimizer, weight decay, gradient accumulation, clipping or scheduler keeps them at
    exactly 0), a copy is written into every checkpoint folder (``checkpoint-N/hf_lottery_ticket``) and into
    ``output_dir/hf_lottery_ticket`` at the end, and it is restored on ``trainer.train(resume_from_checkpoint=...)``
    without `restore_callback_states_from_checkpoint`.

    Args:
        ticket: a `LotteryTicket`, a ticket folder / Hub id, or None to take the ticket from the checkpoint resumed.

    Example:

    ```python
    >>> from hf_lottery import LotteryTicket, rewind
    >>> ticket = LotteryTicket.from_pretrained("out/structured_ticket")               # doctest: +SKIP
    >>> model, _ = rewind(ticket, num_labels=2, seed=42)                              # doctest: +SKIP
    >>> trainer = Trainer(model=model, args=args, train_dataset=train,                # doctest: +SKIP
    ...                   callbacks=[TicketCallback(ticket)])
    >>> trainer.train()                                                               # doctest: +SKIP
    ```
    """

    def __init__(self, ticket: LotteryTicket | str | os.PathLike | None = None):
        self.training = TicketTraining(ticket)

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
        if state.global_step > 0:  # resuming: the Trainer loaded trainer_state.json of checkpoint-<global_step>
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if not self.training.restore_from_checkpoint(checkpoint, model) and self.ticket is None:
                raise ValueError(
                    f"TicketCallback got no ticket and {checkpoint} holds none ({CHECKPOINT_TICKET_DIR}/ missing)."
                )
        if self.ticket is None:
            raise ValueError("TicketCallback needs a ticket: pass one, or resume from a checkpoint that holds one.")
        self.training.attach(model)
        self.training.enforce()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.training.enforce()

    def on_save(self, args, state, control, **kwargs):
        self.training.save_to_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_train_end(self, args, state, control, **kwargs):
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
        batch_size: int = 32,
        threshold: float = 0.9,
        search_data: str = "dev",
        output_dir: str | os.PathLike | None = None,
        base_model: str | None = None,
        task: str | None = None,
        seed: int | None = None,
        **search_kwargs: Any,
    ):
        self.search = TicketSearch(
            method=self.method, dataset=eval_dataset, metric=metric, compute_metrics=compute_metrics,
            metric_key=metric_key, data_collator=data_collator, batch_size=batch_size, threshold=threshold,
            search_data=search_data, output_dir=output_dir, base_model=base_model, task=task, seed=seed,
            search_kwargs=search_kwargs,
        )  # fmt: skip
        self.ticket: LotteryTicket | None = None
        self.ticket_dir: str | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        distributed.check_world_size(args.world_size)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        self.ticket = self.search.run(model, processing_class, default_output_dir=args.output_dir)
        self.ticket_dir = str(self.search.output_dir or os.path.join(args.output_dir, f"{self.method}_ticket"))
        logger.info("%s ticket saved in %s: %r", self.method.capitalize(), self.ticket_dir, self.ticket)


class StructuredPruningCallback(_SearchCallback):
    r"""Find a structured ticket (heads + MLPs, importance pruning, 90 % stop rule) when training ends.

    The Trainer does not hand its `eval_dataset` or `compute_metrics` to callbacks, so give them here: the same
    tokenised dev set (as in the paper) or a held-out slice of train (``search_data="held-out"``), and either a
    GLUE task name (``metric="sst2"``) or ``compute_metrics=your_fn, metric_key="accuracy"``. The ticket is saved in
    ``output_dir/structured_ticket`` (resumable) and exposed as ``callback.ticket``. Extra keyword arguments go to
    `hf_lottery.find_structured_ticket` (e.g. ``head_fraction``, ``paper_compat``, ``on_degenerate``).

    Example:

    ```python
    >>> pruning = StructuredPruningCallback(eval_dataset=dev, metric="mrpc")      # doctest: +SKIP
    >>> trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=dev,
    ...                   processing_class=tokenizer, callbacks=[pruning])         # doctest: +SKIP
    >>> trainer.train(); pruning.ticket                                           # doctest: +SKIP
    ```
    """

    method = "structured"


class MagnitudePruningCallback(_SearchCallback):
    r"""Find a magnitude ticket (global iterative magnitude pruning, 90 % stop rule) when training ends.

    Same arguments as `StructuredPruningCallback`; extra keyword arguments go to `hf_lottery.find_magnitude_ticket`
    (e.g. ``prune_fraction``, ``max_steps``). Saved in ``output_dir/magnitude_ticket``.

    Example:

    ```python
    >>> pruning = MagnitudePruningCallback(eval_dataset=dev, metric="sst2")                      # doctest: +SKIP
    >>> Trainer(model=model, args=args, train_dataset=train, callbacks=[pruning]).train()        # doctest: +SKIP
    ```
    """

    method = "magnitude"


class PushToHubCallback(TrainerCallback):
    r"""Push a ticket (and optionally the masked model, card and plots) to the Hub when training ends.

    Args:
        repo_id: the Hub repository.
        ticket: a `LotteryTicket`, a folder, or a pruning callback listed *before* this one in ``callbacks=[...]``
            (its ticket is read when training ends).
        push_model: push the trained weights with the ticket baked in (plain ``from_pretrained`` gives the pruned
            model), plus card and plots; False pushes the ticket files only, like an adapter.
        private, revision, token, commit_message: passed to the Hub. Tokens are never logged.

    A failed push raises after training; the local results (checkpoints, tickets) stay where they are.

    Example:

    ```python
    >>> pruning = StructuredPruningCallback(eval_dataset=dev, metric="sst2")                  # doctest: +SKIP
    >>> callbacks = [pruning, PushToHubCallback("me/bert-sst2-ticket", ticket=pruning)]        # doctest: +SKIP
    ```
    """

    def __init__(
        self,
        repo_id: str,
        ticket: Any,
        *,
        push_model: bool = True,
        private: bool | None = None,
        revision: str | None = None,
        token: str | None = None,
        commit_message: str | None = None,
    ):
        self.repo_id = repo_id
        self.source = ticket
        self.push_model = push_model
        self.private = private
        self.revision = revision
        self.token = token
        self.commit_message = commit_message
        self.pushed_url: str | None = None

    def _ticket(self) -> LotteryTicket:
        source = self.source
        if isinstance(source, (TicketCallback, _SearchCallback)):
            source = source.ticket
        if source is None:
            raise ValueError("PushToHubCallback has no ticket to push: the pruning callback has not produced one yet.")
        return source if isinstance(source, LotteryTicket) else LotteryTicket.from_pretrained(source)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not distributed.is_main_process():
            return
        from hf_lottery import hub

        ticket = self._ticket()
        common = dict(
            private=self.private, revision=self.revision, token=self.token, commit_message=self.commit_message
        )
        if self.push_model:
            self.pushed_url = hub.push_to_hub(
                unwrap_model(model), ticket, self.repo_id, tokenizer=processing_class, **common
            )
        else:
            self.pushed_url = hub.push_ticket_to_hub(ticket, self.repo_id, **common)
        logger.info("Pushed the %s ticket to %s.", ticket.method, self.repo_id)
