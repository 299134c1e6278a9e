"""Publishing tickets and masked models on the Hugging Face Hub, and loading pruned models in one line.

* `push_ticket_to_hub(ticket, repo_id)`: the ticket files + a card, like an adapter.
* `push_to_hub(model, ticket, repo_id)`: the weights with the ticket *baked in* (pruned head columns, MLPs and weights
  are zeros, so a plain ``AutoModelForSequenceClassification.from_pretrained`` and ``pipeline(...)`` give the pruned
  outputs), the ticket files, a card and plots — in one commit.
* `load_pruned_model(repo_id_or_path, compact=False)`: local folder first, then the Hub; dense with gates, or
  physically compacted.

Everything is prepared in a local staging folder first; a failed push raises `ConnectionError` naming that folder
(which is kept) and changes nothing on the Hub. Tokens are passed to huggingface_hub and never logged.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch import nn
from transformers import AutoModelForSequenceClassification
from transformers.utils import logging

from .card import build_card
from .compaction import COMPACT_WEIGHTS_NAME, _drop_ticket_hooks, compact_model, is_compact_folder, load_compact_folder
from .downloads import TicketNotFoundError
from .gates import apply_ticket
from .structure import unwrap_model
from .ticket import TICKET_CONFIG_NAME, TICKET_MASKS_NAME, LotteryTicket


logger = logging.get_logger(__name__)
MODEL_FILES = ["config.json", "model.safetensors", COMPACT_WEIGHTS_NAME, TICKET_CONFIG_NAME, TICKET_MASKS_NAME,
               "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "merges.txt",
               "vocab.json", "sentencepiece.bpe.model", "spm.model"]  # fmt: skip


def _plots(ticket: LotteryTicket, folder: Path) -> list[str]:
    try:
        from .analysis.plots import plot_head_survival, plot_mlp_survival
    except ImportError:  # pragma: no cover - matplotlib missing
        return []
    try:
        plot_head_survival(ticket, folder / "plots" / "head_survival.png", title="Heads kept (1) and pruned (0)")
        plot_mlp_survival([ticket], folder / "plots" / "mlp_survival.png", title="MLPs kept")
    except ImportError as err:
        logger.warning("No plots in the card: %s", err)
        return []
    return ["plots/head_survival.png", "plots/mlp_survival.png"]


def _commit(folder: Path, repo_id: str, *, private: bool | None, revision: str | None, token: str | bool | None,
            commit_message: str, create_pr: bool = False) -> str:  # fmt: skip
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.create_commit(
            repo_id, operations=operations, commit_message=commit_message, revision=revision, create_pr=create_pr
        )
    except Exception as err:
        raise ConnectionError(
            f"Pushing to {repo_id!r} failed ({type(err).__name__}: {err}). Nothing was committed; the prepared files "
            f"are kept in {folder}. Your local results are unchanged."
        ) from err
    return str(getattr(info, "commit_url", info))


def _card_and_commit(folder: Path, ticket: LotteryTicket, repo_id: str, *, with_model: bool,
                     metric_name: str | None = None, **commit_kwargs: Any) -> str:  # fmt: skip
    """Add the card and plots to a prepared staging folder, push it in one commit, then delete it."""
    plots = _plots(ticket, folder)
    build_card(ticket, repo_id, with_model=with_model, plots=plots, metric_name=metric_name).save(folder / "README.md")
    url = _commit(folder, repo_id, **commit_kwargs)
    shutil.rmtree(folder, ignore_errors=True)  # only after a successful push: a failed one keeps the folder
    return url


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
) -> str:
    """Push the ticket files (masks + config), a model card and plots to `repo_id`; return the commit URL.

    Example:

    ```python
    >>> push_ticket_to_hub(ticket, "you/bert-mrpc-structured-ticket")        # doctest: +SKIP
    >>> LotteryTicket.from_pretrained("you/bert-mrpc-structured-ticket")     # doctest: +SKIP
    ```
    """
    folder = _staging(staging_dir)
    ticket.save_pretrained(folder)
    return _card_and_commit(folder, ticket, repo_id, with_model=False, private=private, revision=revision, token=token,
                            create_pr=create_pr, commit_message=commit_message or
                            f"Add {ticket.method} {ticket.kind} lottery ticket (hf-lottery)")  # fmt: skip


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
) -> str:
    """Push `model` with `ticket` baked into its weights, the ticket files, a card and plots, in one commit.

    The user's model is not modified (a copy is baked). Pass the `tokenizer` so ``pipeline(...)`` works on the repo.

    Example:

    ```python
    >>> push_to_hub(model, ticket, "you/bert-sst2-lottery", tokenizer=tokenizer)   # doctest: +SKIP
    >>> AutoModelForSequenceClassification.from_pretrained("you/bert-sst2-lottery")  # the pruned model
    ```
    """
    folder = _staging(staging_dir)
    baked = copy.deepcopy(unwrap_model(model))
    _drop_ticket_hooks(baked)
    ticket.validate(baked)
    ticket.bake(baked).save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    ticket.save_pretrained(folder)
    return _card_and_commit(folder, ticket, repo_id, with_model=True, metric_name=metric_name, private=private,
                            revision=revision, token=token, create_pr=create_pr, commit_message=commit_message or
                            f"Add {ticket.method} {ticket.kind} pruned model (hf-lottery)")  # fmt: skip


def _resolve(repo_id_or_path: str | os.PathLike, revision: str | None, token: str | bool | None) -> Path:
    """A local folder as is, else a snapshot of the repo's model, ticket and tokenizer files."""
    path = Path(repo_id_or_path)
    if path.is_dir():
        return path
    if path.exists():
        raise NotADirectoryError(f"{path} is a file; give a model folder or a Hub repo id.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import HFValidationError

    try:
        local = snapshot_download(
            str(repo_id_or_path), revision=revision, token=token, allow_patterns=MODEL_FILES + ["plots/*"]
        )
    except HFValidationError as err:
        raise FileNotFoundError(
            f"{str(repo_id_or_path)!r} is neither a local folder nor a valid Hub repo id."
        ) from err
    except (RepositoryNotFoundError, GatedRepoError) as err:
        raise FileNotFoundError(
            f"No accessible Hub repository {str(repo_id_or_path)!r} (private? pass token=)."
        ) from err
    except RevisionNotFoundError as err:
        raise FileNotFoundError(f"Hub repository {str(repo_id_or_path)!r} has no revision {revision!r}.") from err
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise ConnectionError(f"Could not download {str(repo_id_or_path)!r} from the Hub: {err}") from err
    return Path(local)


def load_pruned_model(
    repo_id_or_path: str | os.PathLike,
    revision: str | None = None,
    compact: bool = False,
    *,
    token: str | bool | None = None,
    model_class: type | None = None,
    **from_pretrained_kwargs: Any,
) -> nn.Module:
    """Load a pruned model from a local folder or the Hub, dense with gates (default) or physically compacted.

    Folders written by `push_to_hub` (or ``save_pretrained`` + ``ticket.save_pretrained``) load their weights with
    `model_class` (default `AutoModelForSequenceClassification`) and get the ticket applied as gates
    (``model.hf_lottery_ticket`` / ``model.hf_lottery_handle``); ``compact=True`` removes the pruned heads and MLP
    neurons instead. Folders saved from a compacted model always load compact.

    Raises:
        TicketNotFoundError: the repo or folder holds no ticket files (and is not a compact folder).
        ValueError: the ticket does not fit the model.
        ConnectionError: the Hub could not be reached (nothing local is touched).

    Example:

    ```python
    >>> model = load_pruned_model("you/bert-sst2-lottery", compact=True)   # doctest: +SKIP
    ```
    """
    folder = _resolve(repo_id_or_path, revision, token)
    if is_compact_folder(folder):
        model = load_compact_folder(folder, model_class)
        model.hf_lottery_ticket = None
        return model
    if not (folder / TICKET_CONFIG_NAME).is_file():
        raise TicketNotFoundError(
            f"{repo_id_or_path} holds no hf-lottery ticket ({TICKET_CONFIG_NAME} + {TICKET_MASKS_NAME}); it is not a "
            "pruned model pushed by hf-lottery. Load it with from_pretrained, or its ticket from another repo."
        )
    ticket = LotteryTicket.from_pretrained(folder)
    model = (model_class or AutoModelForSequenceClassification).from_pretrained(folder, **from_pretrained_kwargs)
    ticket.validate(model)
    if compact:
        model = compact_model(model, ticket, inplace=True)
    else:
        model.hf_lottery_handle = apply_ticket(model, ticket)
    model.hf_lottery_ticket = ticket
    return model.eval()
