"""`hf-lottery push` and `hf-lottery download`: publish tickets / masked models and fetch pruned models."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import no_links_out
from ..tickets.fields import check_metrics
from . import echo, parse_dataclasses
from .table import COMMANDS


@dataclass
class PushArguments:
    ticket: str = field(default=None, metadata={"help": "Ticket folder (also the first positional)."})
    repo_id: str = field(default=None, metadata={"help": "Hub repo, e.g. you/bert-mrpc-ticket (2nd positional)."})
    model_dir: str | None = field(default=None, metadata={"help": "Fine-tuned model: push it, ticket baked in."})
    private: bool = field(default=False, metadata={"help": "Create the repo as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to push to (created if missing)."})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: the logged-in one; never shown)."})
    commit_message: str | None = field(default=None, metadata={"help": "Commit message."})
    metrics: list[str] | None = field(default=None, metadata={"help": "The pushed weights' scores: accuracy=0.91 ..."})
    create_pr: bool = field(default=False, metadata={"help": "Open a pull request instead of committing."})
    staging_dir: str | None = field(default=None, metadata={"help": "Only stage the files in this new folder."})

    def __post_init__(self):
        if not self.ticket or not self.repo_id:
            raise ValueError("`ticket` and `repo_id` are required: hf-lottery push TICKET REPO_ID.")
        if self.metrics and not self.model_dir:
            raise ValueError("`metrics` score the pushed weights: give them with `model_dir` (the model pushed).")
        pairs = (item.split("=", 1) if not item.startswith("=") else [item] for item in self.metrics or [])
        try:  # an item without "=", a name or a number neither unpacks nor converts
            self.scores = {name: float(value) for name, value in pairs}
        except ValueError:
            raise ValueError("`metrics` takes name=value pairs, e.g. accuracy=0.91 f1=0.88.") from None
        check_metrics(self.scores, "metrics")


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
    common = dict(private=args.private or None, revision=args.revision, token=args.token, create_pr=args.create_pr,
                  commit_message=args.commit_message, staging_dir=args.staging_dir,
                  stage_only=bool(args.staging_dir))  # fmt: skip
    if args.model_dir:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(args.model_dir)
        try:
            tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
        except (OSError, ValueError):
            tokenizer = None
        url = push_to_hub(model, ticket, args.repo_id, tokenizer=tokenizer, metrics=args.scores, **common)
    else:
        url = push_ticket_to_hub(ticket, args.repo_id, **common)
    if args.staging_dir:
        files = sorted(p.relative_to(url).as_posix() for p in Path(url).rglob("*") if p.is_file())
        echo(f"Staged in {url} (nothing sent); a push would add:", *(f"  {name}" for name in files))
    else:
        echo(f"{'Opened a pull request' if args.create_pr else 'Pushed'}: {url}")
    return 0


def _download(args: DownloadArguments) -> int:
    from ..models.loading import load_pruned_model

    model = load_pruned_model(args.repo_id_or_path, revision=args.revision, compact=args.compact, token=args.token)
    output = no_links_out(args.output_dir)
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

        tokenizer = AutoTokenizer.from_pretrained(args.repo_id_or_path, revision=args.revision, token=args.token)
        tokenizer.save_pretrained(output)
    except (OSError, ValueError):
        pass  # a ticket-only or tokenizer-less repo
    echo(f"Saved {'compact ' if args.compact else ''}model in {output}")
    return 0
