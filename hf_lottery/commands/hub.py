"""`hf-lottery push` and `hf-lottery download`: publish tickets / masked models and fetch pruned models."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import echo


def register(subparsers: argparse._SubParsersAction) -> None:
    push = subparsers.add_parser(
        "push", help="push a ticket (masks only) or, with --model_dir, the masked model + ticket + card to the Hub"
    )
    push.add_argument("ticket", help="ticket folder")
    push.add_argument("repo_id", help="Hub repository, e.g. you/bert-mrpc-ticket")
    push.add_argument("--model_dir", default=None, help="fine-tuned model folder: push it with the ticket baked in")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--revision", default=None, help="branch to push to (created if missing)")
    push.add_argument("--token", default=None, help="Hub token (default: the logged-in one; never printed)")
    push.add_argument("--commit_message", default=None)
    push.set_defaults(func=_push)

    download = subparsers.add_parser("download", help="load a pruned model from the Hub or a folder and save it")
    download.add_argument("repo_id_or_path")
    download.add_argument("--output_dir", required=True, help="where to save the (compacted) model")
    download.add_argument("--compact", action="store_true", help="remove pruned heads and MLP neurons physically")
    download.add_argument("--revision", default=None)
    download.add_argument("--token", default=None)
    download.set_defaults(func=_download)


def _push(args: argparse.Namespace) -> int:
    from ..hub import push_ticket_to_hub, push_to_hub
    from ..ticket import LotteryTicket

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


def _download(args: argparse.Namespace) -> int:
    from ..loading import load_pruned_model

    model = load_pruned_model(args.repo_id_or_path, revision=args.revision, compact=args.compact, token=args.token)
    output = Path(args.output_dir)
    if args.compact:
        model.save_pretrained(output)
    else:
        ticket = model.hf_lottery_ticket
        model.hf_lottery_handle.remove(restore_weights=False)
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
