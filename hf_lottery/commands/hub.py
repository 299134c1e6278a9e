"""`hf-lottery push` and `hf-lottery download`: publish tickets / masked models and fetch pruned models."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import echo, parse_dataclasses
from .table import COMMANDS


@dataclass
class PushArguments:
    ticket: str = field(default=None, metadata={"help": "Ticket folder (also the first positional)."})
    repo_id: str = field(
        default=None, metadata={"help": "Hub repository, e.g. you/bert-mrpc-ticket (2nd positional)."}
    )
    model_dir: str | None = field(
        default=None, metadata={"help": "Fine-tuned model folder: push it with the ticket baked in."}
    )
    private: bool = field(default=False, metadata={"help": "Create the repo as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to push to (created if missing)."})
    token: str | None = field(
        default=None, metadata={"help": "Hub token (default: the logged-in one; never printed)."}
    )
    commit_message: str | None = field(default=None, metadata={"help": "Commit message."})

    def __post_init__(self):
        if not self.ticket or not self.repo_id:
            raise ValueError("`ticket` and `repo_id` are required: hf-lottery push TICKET REPO_ID.")


@dataclass
class DownloadArguments:
    repo_id_or_path: str = field(default=None, metadata={"help": "Hub repo id or folder (also the positional)."})
    output_dir: str = field(default=None, metadata={"help": "Where to save the (compacted) model."})
    compact: bool = field(default=False, metadata={"help": "Remove pruned heads and MLP neurons physically."})
    revision: str | None = field(default=None, metadata={"help": "Hub revision."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: the logged-in one)."})

    def __post_init__(self):
        if not self.repo_id_or_path or not self.output_dir:
            raise ValueError("`repo_id_or_path` and `output_dir` are required.")


def main(name: str, argv: list[str]) -> int:
    prog, description = f"hf-lottery {name}", COMMANDS[name][1]
    if name == "push":
        return _push(*parse_dataclasses(prog, description, [PushArguments], argv, positionals=["ticket", "repo_id"]))
    return _download(*parse_dataclasses(prog, description, [DownloadArguments], argv, positionals=["repo_id_or_path"]))


def _push(args: PushArguments) -> int:
    from ..hub.push import push_ticket_to_hub, push_to_hub
    from ..tickets.ticket import LotteryTicket

    ticket = LotteryTicket.from_pretrained(args.ticket)
    common = dict(
        private=args.private or None, revision=args.revision, token=args.token, commit_message=args.commit_message
    )
    if args.model_dir:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(args.model_dir)
        try:
            tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
        except (OSError, ValueError):
            tokenizer = None
        url = push_to_hub(model, ticket, args.repo_id, tokenizer=tokenizer, **common)
    else:
        url = push_ticket_to_hub(ticket, args.repo_id, **common)
    echo(f"Pushed: {url}")
    return 0


def _download(args: DownloadArguments) -> int:
    from ..models.loading import load_pruned_model

    model = load_pruned_model(args.repo_id_or_path, revision=args.revision, compact=args.compact, token=args.token)
    output = Path(args.output_dir)
    if args.compact:
        model.save_pretrained(output)
    else:
        from ..gates import active_handles, applied_ticket

        ticket = applied_ticket(model)
        for handle in active_handles(model):
            handle.remove(restore_weights=False)
        ticket.bake(model).save_pretrained(output)
        ticket.save_pretrained(output)
    try:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(args.repo_id_or_path, revision=args.revision, token=args.token).save_pretrained(
            output
        )
    except (OSError, ValueError):
        pass  # a ticket-only or tokenizer-less repo
    echo(f"Saved {'compact ' if args.compact else ''}model in {output}")
    return 0
