"""`hf-lottery show` and `hf-lottery import-legacy`: inspect tickets and import the paper's .npy masks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import echo, parse_dataclasses


@dataclass
class ShowArguments:
    ticket: str = field(default=None, metadata={"help": "Ticket folder or Hub repo id (also the first positional)."})
    revision: str | None = field(default=None, metadata={"help": "Hub branch, tag or commit of the ticket."})

    def __post_init__(self):
        if not self.ticket:
            raise ValueError("`ticket` is required: hf-lottery show TICKET_DIR_OR_REPO")


@dataclass
class ImportLegacyArguments:
    folders: list[str] = field(
        default_factory=list,
        metadata={"help": "Folders holding the paper's head_mask.npy (and mlp_mask.npy); also the positionals."},
    )
    output_dir: str = field(default=None, metadata={"help": "Where to write one ticket folder per input folder."})
    base_model: str = field(default="bert-base-uncased", metadata={"help": "The model the masks belong to."})

    def __post_init__(self):
        if not self.folders or not self.output_dir:
            raise ValueError(
                "`folders` and `output_dir` are required: hf-lottery import-legacy FOLDER... --output_dir D"
            )


def main(name: str, argv: list[str]) -> int:
    return {"show": _show, "import-legacy": _import_legacy}[name](argv)


def _show(argv: list[str]) -> int:
    from ..tickets.ticket import LotteryTicket

    (args,) = parse_dataclasses(
        "hf-lottery show", "Print a ticket's summary.", [ShowArguments], argv, positionals=["ticket"]
    )
    ticket = LotteryTicket.from_pretrained(args.ticket, revision=args.revision)
    echo(repr(ticket))
    echo(json.dumps(ticket.summary(), indent=2))
    return 0


def _import_legacy(argv: list[str]) -> int:
    from ..tickets.legacy import load_legacy_ticket
    from ..tickets.ticket import TICKET_CONFIG_NAME, LotteryTicket

    (args,) = parse_dataclasses(
        "hf-lottery import-legacy", "Turn the paper's .npy mask folders into ticket folders.",
        [ImportLegacyArguments], argv, positionals=["folders"], variadic=True,
    )  # fmt: skip
    imported: dict[Path, tuple[str, LotteryTicket]] = {}  # every folder is read before anything is written
    for folder in args.folders:
        ticket = load_legacy_ticket(folder, base_model=args.base_model)
        name = "_".join(p for p in (ticket.task, f"seed_{ticket.seed}" if ticket.seed is not None else None) if p)
        target = Path(args.output_dir) / (name or Path(folder).resolve().name)
        if target in imported:
            raise ValueError(f"{imported[target][0]} and {folder} would both be {target}; import them one at a time.")
        if (target / TICKET_CONFIG_NAME).is_file() and LotteryTicket.from_pretrained(target) != ticket:
            raise ValueError(f"{target} already holds another ticket; choose another --output_dir or delete it.")
        imported[target] = (folder, ticket)
    for target, (folder, ticket) in imported.items():
        ticket.save_pretrained(target)
        echo(f"{folder} -> {target}: {ticket!r}")
    return 0
