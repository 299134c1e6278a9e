"""Publishing tickets (`push_ticket_to_hub`, like an adapter) and masked models (`push_to_hub`) on the Hub.

The repo id is validated before anything is written. Everything is prepared in a staging folder (`staging_dir`, else
a temporary folder) and committed with ``HfApi.upload_folder``; the staging folder is removed after a successful push
and kept after a failed one, whose `ConnectionError` names it (nothing is committed). Tokens are passed to
huggingface_hub and never logged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from torch import nn
from transformers.utils import logging

from ..analysis.plots import plot_ticket
from ..gates import copy_without_hooks
from ..models.compaction import CompactModelMixin, compact_model
from ..models.expansion import expand_compact_model
from ..models.latency import compare_latency
from ..provenance import check_repo_id
from ..tickets.ticket import LotteryTicket
from .card import build_card


logger = logging.get_logger(__name__)


def _card_and_commit(folder: Path, ticket: LotteryTicket, repo_id: str, *, with_model: bool,
                     card_kwargs: dict[str, Any], private: bool | None, revision: str | None,
                     token: str | bool | None, commit_message: str, create_pr: bool) -> str:  # fmt: skip
    """Add the card and plots to a prepared staging folder, push it in one commit, then delete it."""
    try:
        plots = [path.relative_to(folder).as_posix() for path in plot_ticket(ticket, folder / "plots")]
    except ImportError as err:  # matplotlib missing
        logger.warning("No plots in the card: %s", err)
        plots = []
    build_card(ticket, repo_id, with_model=with_model, plots=plots, **card_kwargs).save(folder / "README.md")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message, revision=revision, create_pr=create_pr
        )
    except Exception as err:
        raise ConnectionError(
            f"Pushing to {repo_id!r} failed ({type(err).__name__}: {err}). Nothing was committed; the prepared files "
            f"are kept in {folder}. Your local results are unchanged."
        ) from err
    shutil.rmtree(folder, ignore_errors=True)  # only after a successful push: a failed one keeps the folder
    return str(getattr(info, "commit_url", info))


def _staging(staging_dir: str | os.PathLike | None) -> Path:
    if staging_dir is not None:
        folder = Path(staging_dir)
        if folder.exists() and any(folder.iterdir()):
            raise ValueError(f"staging_dir {folder} is not empty; give an empty or new folder.")
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return Path(tempfile.mkdtemp(prefix="hf_lottery_push_"))


def push_ticket_to_hub(
    ticket: LotteryTicket,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    staging_dir: str | os.PathLike | None = None,
    create_pr: bool = False,
    metric_name: str | None = None,
) -> str:
    """Push the ticket files (masks + config), a model card and plots to `repo_id`; return the commit URL.

    Example:

    ```python
    >>> push_ticket_to_hub(ticket, "you/bert-mrpc-structured-ticket")        # doctest: +SKIP
    >>> LotteryTicket.from_pretrained("you/bert-mrpc-structured-ticket")     # doctest: +SKIP
    ```
    """
    repo_id = check_repo_id(repo_id)
    folder = _staging(staging_dir)
    ticket.save_pretrained(folder)
    return _card_and_commit(folder, ticket, repo_id, with_model=False, card_kwargs={"metric_name": metric_name},
                            private=private, revision=revision, token=token, create_pr=create_pr,
                            commit_message=commit_message or f"Add {ticket.method} {ticket.kind} lottery ticket (hf-lottery)")  # fmt: skip


def push_to_hub(
    model: nn.Module,
    ticket: LotteryTicket,
    repo_id: str,
    *,
    tokenizer: Any = None,
    private: bool | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    metric_name: str | None = None,
    staging_dir: str | os.PathLike | None = None,
    create_pr: bool = False,
    metrics: dict[str, float] | None = None,
    metrics_split: str | None = None,
    training_args: Any = None,
    finetuned_from: str | None = None,
    measure_latency: bool = False,
) -> str:
    """Push `model` with `ticket` baked into its weights, the ticket files, a card and plots, in one commit.

    Pruned head columns, MLPs and weights are zeros, so a plain ``AutoModelForSequenceClassification.from_pretrained``
    and ``pipeline(...)`` give the pruned outputs; `hf_lottery.load_pruned_model` loads it with the ticket. The user's
    model is not modified (a copy is baked). Pass the `tokenizer` so ``pipeline(...)`` works on the repo. `metrics` are
    the scores *of the weights pushed* (e.g. ``{"accuracy": 0.609}`` after re-fine-tuning the ticket) on
    `metrics_split` (default: the task's GLUE validation split); the card shows them as this model's results and the
    ticket's search metrics separately, labelled as measured on the fine-tuned model. `training_args` (a
    ``TrainingArguments`` or a dict) gives the card its hyper-parameters; `finetuned_from` names the fine-tuned parent
    on the Hub. With ``measure_latency=True`` (structured tickets) the card reports the dense and compacted models'
    forward time on this machine.

    Example:

    ```python
    >>> push_to_hub(model, ticket, "you/bert-sst2-lottery", tokenizer=tokenizer, metrics={"accuracy": 0.61})  # doctest: +SKIP
    >>> AutoModelForSequenceClassification.from_pretrained("you/bert-sst2-lottery")  # doctest: +SKIP
    ```
    """
    repo_id = check_repo_id(repo_id)
    baked = copy_without_hooks(model)
    if isinstance(baked, CompactModelMixin):  # trained compacted: push the dense architecture with the ticket baked in
        baked = expand_compact_model(baked, inplace=True)
    ticket.validate(baked)
    ticket.bake(baked)
    latency = None
    if measure_latency and ticket.method == "structured":
        latency = compare_latency(baked, compact_model(baked, ticket))
    parent = finetuned_from or getattr(getattr(baked, "config", None), "_name_or_path", None)
    card_kwargs = {"metric_name": metric_name, "metrics": metrics, "metrics_split": metrics_split,
                   "training_args": training_args, "finetuned_from": parent, "latency": latency}  # fmt: skip
    folder = _staging(staging_dir)
    baked.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    ticket.save_pretrained(folder)
    return _card_and_commit(folder, ticket, repo_id, with_model=True, card_kwargs=card_kwargs, private=private,
                            revision=revision, token=token, create_pr=create_pr, commit_message=commit_message or
                            f"Add {ticket.method} {ticket.kind} pruned model (hf-lottery)")  # fmt: skip
