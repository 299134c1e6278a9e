"""Publishing tickets (`push_ticket_to_hub`, like an adapter) and masked models (`push_to_hub`) on the Hub.

The repo id is validated before anything is written. Everything is prepared in a staging folder (`staging_dir`, else
a temporary folder) and sent as one ``HfApi.create_commit`` that also deletes the `ARTIFACTS` of an earlier push it
does not write (``upload_folder`` may split a push); the staging folder is removed after a successful push and kept
after a failed one, whose error names it (`push_error`); ``stage_only=True`` only stages. Tokens are never logged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import httpx2
import torch
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub import errors as hub_errors
from torch import nn
from transformers.utils import logging

from ..analysis.plots import plot_ticket
from ..files import CONFIG_TICKET_KEY
from ..gates import applied_ticket, copy_without_hooks
from ..models.compaction import CompactModelMixin, compact_model
from ..models.expansion import expand_compact_model
from ..models.latency import compare_latency
from ..models.loading import MODEL_FILES
from ..models.onnx_export import ONNX_MODEL_NAME
from ..provenance import check_repo_id
from ..structure import check_materialized
from ..tickets.fields import check_metrics, json_value
from ..tickets.ticket import LotteryTicket
from .card import build_card, write_eval_results


logger = logging.get_logger(__name__)
ARTIFACTS = (*MODEL_FILES, "pytorch_model.bin", "added_tokens.json", ONNX_MODEL_NAME, "plots/*_survival.png",
             ".eval_results/glue-*.yaml")  # fmt: skip


def commit_operations(folder: Path, repo_files: list[str]) -> list[CommitOperationAdd | CommitOperationDelete]:
    """One commit: add every file staged in `folder`, delete the `ARTIFACTS` among `repo_files` not staged."""
    staged = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    stale = [name for name in repo_files if name not in staged and any(fnmatchcase(name, p) for p in ARTIFACTS)]
    return [*(CommitOperationAdd(name, folder / name) for name in staged), *map(CommitOperationDelete, stale)]


def _card_and_commit(folder: Path, ticket: LotteryTicket, repo_id: str, *, with_model: bool,
                     card_kwargs: dict[str, Any], private: bool | None, revision: str | None, stage_only: bool,
                     token: str | bool | None, commit_message: str, create_pr: bool) -> str:  # fmt: skip
    """Stage the ticket, card, results and plots in `folder`, push them in one commit (`stage_only`: no push)."""
    ticket.save_pretrained(folder)
    try:
        plots = [path.relative_to(folder).as_posix() for path in plot_ticket(ticket, folder / "plots")]
    except ImportError as err:  # matplotlib missing
        logger.warning("No plots in the card: %s", err)
        plots = []
    card = build_card(ticket, repo_id, with_model=with_model, plots=plots, local_only=stage_only, **card_kwargs)
    card.save(folder / "README.md")
    write_eval_results(folder, ticket, card_kwargs.get("metrics"), card_kwargs.get("metrics_split"))
    if stage_only:
        return str(folder)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        head = api.repo_info(repo_id, revision=revision).sha  # the parent commit, whose files are listed
        changes = commit_operations(folder, api.list_repo_files(repo_id, revision=head))
        info = api.create_commit(
            repo_id, changes, commit_message=commit_message, revision=revision, create_pr=create_pr, parent_commit=head
        )
    except Exception as err:
        raise push_error(err, repo_id, folder, token) from err
    shutil.rmtree(folder, ignore_errors=True)  # only after a successful push: a failed one keeps the folder
    return str(getattr(info, "pr_url", None) or getattr(info, "commit_url", info))


def push_error(err: Exception, repo_id: str, folder: Path, token: str | bool | None = None) -> Exception:
    """The error of a failed push (no or a refused token, no write access, no network, the Hub's answer)."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    reason = f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"
    if status == 401 or isinstance(err, hub_errors.LocalTokenNotFoundError):
        known = token not in (None, True) or get_token()  # a token given, or the one stored on this machine
        why = "the Hub refused the token (401: invalid or expired)" if known else "no Hub token was found"
        kind, why = PermissionError, f"{why}; log in with `hf auth login` or pass a token"
    elif status == 403 or isinstance(err, hub_errors.RepositoryNotFoundError):
        kind, why = PermissionError, f"the token may not write there ({status}: another owner's repo, or read-only)"
    elif isinstance(err, (httpx2.TransportError, ConnectionError, TimeoutError)):  # OfflineModeIsEnabled included
        kind, why = ConnectionError, f"the Hub cannot be reached ({reason})"
    else:  # the Hub's answer to another request (an HfHubHTTPError has a status), or a failure of another kind
        kind, why = (OSError, f"the Hub answered {status}: {reason}") if status else (RuntimeError, reason)
    return kind(f"Pushing to {repo_id!r} failed: {why}. Nothing was committed; the prepared files are kept in "
                f"{folder}. Your local results are unchanged.")  # fmt: skip


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
    stage_only: bool = False,
) -> str:
    """Push the ticket files (masks + config), a model card and plots to `repo_id`; return the commit URL (the PR's
    with `create_pr`; with `stage_only`, the staging folder: nothing is sent).

    Example:

    ```python
    >>> push_ticket_to_hub(ticket, "you/bert-mrpc-structured-ticket")        # doctest: +SKIP
    >>> LotteryTicket.from_pretrained("you/bert-mrpc-structured-ticket")     # doctest: +SKIP
    ```
    """
    repo_id = check_repo_id(repo_id)
    folder = _staging(staging_dir)
    return _card_and_commit(folder, ticket, repo_id, with_model=False, card_kwargs={"metric_name": metric_name},
                            private=private, revision=revision, token=token, create_pr=create_pr,
                            stage_only=stage_only, commit_message=commit_message
                            or f"Add {ticket.method} {ticket.kind} lottery ticket (hf-lottery)")  # fmt: skip


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
    stage_only: bool = False,
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
    forward time on this machine. Returns the commit's url (the PR's with `create_pr`; with `stage_only`, the folder).

    Example:

    ```python
    >>> push_to_hub(model, ticket, "you/bert-sst2-lottery", tokenizer=tokenizer, metrics={"accuracy": 0.61})  # doctest: +SKIP
    >>> AutoModelForSequenceClassification.from_pretrained("you/bert-sst2-lottery")  # doctest: +SKIP
    ```
    """
    repo_id = check_repo_id(repo_id)
    metrics = check_metrics(json_value(dict(metrics), "metrics")) if metrics else None
    baked = copy_without_hooks(check_materialized(model))
    if isinstance(baked, CompactModelMixin):  # trained compacted: push the dense architecture with the ticket baked in
        baked = expand_compact_model(baked, inplace=True)
    _check_carried_ticket(applied_ticket(model) or applied_ticket(baked), baked, ticket)
    ticket.validate(baked)
    ticket.bake(baked)
    setattr(baked.config, CONFIG_TICKET_KEY, ticket.to_config_entry(baked))  # config.json names the ticket pushed
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
    return _card_and_commit(folder, ticket, repo_id, with_model=True, card_kwargs=card_kwargs, private=private,
                            revision=revision, token=token, create_pr=create_pr, stage_only=stage_only,
                            commit_message=commit_message or
                            f"Add {ticket.method} {ticket.kind} pruned model (hf-lottery)")  # fmt: skip


def _check_carried_ticket(carried: LotteryTicket | None, model: nn.Module, ticket: LotteryTicket) -> None:
    """Refuse a model whose own ticket (applied, compacted or in its config) prunes what the ticket pushed keeps."""
    entry = getattr(model.config, CONFIG_TICKET_KEY, None)
    with contextlib.suppress(ValueError, TypeError):  # weights without the entry's zeros no longer carry it
        carried = carried or (entry and LotteryTicket.from_config_entry(entry, model))
    if not carried:
        return
    pairs = [(ticket.head_mask, carried.head_mask), (ticket.mlp_mask, carried.mlp_mask)]
    pairs += [(ticket.weight_masks.get(name, torch.ones_like(m)), m) for name, m in carried.weight_masks.items()]
    if any(kept.shape != other.shape or bool((kept & ~other).any()) for kept, other in pairs):
        raise ValueError(
            f"The model carries another ticket, {carried}, than the one to push, {ticket}: pushing would bake both. "
            "Push it with its own ticket (`applied_ticket(model)`), or remove that one first (`handle.remove()`)."
        )
