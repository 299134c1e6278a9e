"""`hf-lottery show` and `hf-lottery import-legacy`: inspect tickets and import the paper's .npy masks."""

from __future__ import annotations

import argparse
import json

from . import echo


def register(subparsers: argparse._SubParsersAction) -> None:
    show = subparsers.add_parser("show", help="print a ticket's summary (local folder or Hub repo id)")
    show.add_argument("ticket", help="ticket folder or Hub repo id")
    show.add_argument("--revision", default=None)
    show.set_defaults(func=_show)

    legacy = subparsers.add_parser(
        "import-legacy", help="turn the paper's head_mask.npy / mlp_mask.npy folders into ticket folders"
    )
    legacy.add_argument("folders", nargs="+", help="folders holding head_mask.npy (and mlp_mask.npy)")
    legacy.add_argument("--output_dir", required=True, help="where to write one ticket folder per input folder")
    legacy.add_argument("--base_model", default="bert-base-uncased", help="model the masks belong to")
    legacy.set_defaults(func=_import_legacy)


def _show(args: argparse.Namespace) -> int:
    from ..ticket import LotteryTicket

    ticket = LotteryTicket.from_pretrained(args.ticket, revision=args.revision)
    echo(repr(ticket))
    echo(json.dumps(ticket.summary(), indent=2))
    return 0


def _import_legacy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..legacy import load_legacy_ticket

    out = Path(args.output_dir)
    for folder in args.folders:
        ticket = load_legacy_ticket(folder, base_model=args.base_model)
        name = "_".join(p for p in (ticket.task, f"seed_{ticket.seed}" if ticket.seed is not None else None) if p)
        target = out / (name or Path(folder).name)
        ticket.save_pretrained(target)
        echo(f"{folder} -> {target}: {ticket!r}")
    return 0
