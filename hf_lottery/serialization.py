"""Ticket files: ``ticket_config.json`` (sorted JSON, version stamp, masks checksum) + ``ticket_masks.safetensors``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .atomic import atomic_path, sha256_file, write_json
from .ticket import (
    FORMAT_VERSION,
    TICKET_CONFIG_NAME,
    TICKET_MASKS_NAME,
    LotteryTicket,
    check_format_version,
    metadata_from_config,
)


if TYPE_CHECKING:
    pass

_SCALAR_FIELDS = (
    "method",
    "kind",
    "base_model",
    "base_model_revision",
    "task",
    "seed",
    "threshold",
    "search_data",
    "model_dims",
    "history",
    "metrics",
    "extra",
)


def ticket_to_config(ticket: LotteryTicket) -> dict[str, Any]:
    """The JSON half of a ticket (everything but the tensors), with summary figures for people reading the file."""
    summary = ticket.summary()
    config: dict[str, Any] = {name: getattr(ticket, name) for name in _SCALAR_FIELDS}
    config.update(
        format_version=FORMAT_VERSION,
        library="hf-lottery",
        library_version=__version__,
        num_layers=ticket.num_layers,
        num_heads=ticket.num_heads,
        kept_heads=summary["kept_heads"],
        heads_kept_per_layer=summary["heads_kept_per_layer"],
        kept_mlps=summary["kept_mlps"],
        mlps_kept=ticket.mlp_mask.int().tolist(),
        sparsity=ticket.sparsity,
        weight_mask_names=list(ticket.weight_masks),
        has_scores=ticket.head_importance is not None or ticket.mlp_importance is not None,
    )
    return config


def ticket_tensors(ticket: LotteryTicket) -> dict[str, torch.Tensor]:
    tensors = {"head_mask": ticket.head_mask, "mlp_mask": ticket.mlp_mask}
    if ticket.head_importance is not None:
        tensors["head_importance"] = ticket.head_importance
    if ticket.mlp_importance is not None:
        tensors["mlp_importance"] = ticket.mlp_importance
    tensors.update(ticket.weight_masks)
    return {name: t.detach().cpu().contiguous() for name, t in tensors.items()}


def save_ticket(ticket: LotteryTicket, save_directory: str | os.PathLike) -> Path:
    """Write the two ticket files atomically; return the folder.

    The masks file is renamed into place first and the config (which carries the masks' sha256) last, so a reader
    either sees a complete previous ticket, or a checksum mismatch it reports, never silently mixed files.
    """
    folder = Path(save_directory)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"Cannot save a ticket into {folder}: it is a file, not a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "pt", "hf_lottery_format_version": str(FORMAT_VERSION), "library": "hf-lottery"}
    with atomic_path(folder / TICKET_MASKS_NAME) as tmp:
        save_file(ticket_tensors(ticket), str(tmp), metadata=metadata)
        digest = sha256_file(tmp)
    config = ticket_to_config(ticket)
    config["masks_sha256"] = digest
    write_json(folder / TICKET_CONFIG_NAME, config)
    return folder


def _resolve_files(path: str | os.PathLike, **hub_kwargs: Any) -> tuple[Path, Path]:
    folder = Path(path)
    subfolder = hub_kwargs.get("subfolder") or ""
    local = folder / subfolder if subfolder else folder
    if local.is_dir():
        config_file, masks_file = local / TICKET_CONFIG_NAME, local / TICKET_MASKS_NAME
        missing = [p.name for p in (config_file, masks_file) if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{local} is not a ticket folder: missing {', '.join(missing)} "
                f"(a ticket folder holds {TICKET_CONFIG_NAME} and {TICKET_MASKS_NAME})."
            )
        return config_file, masks_file
    if folder.exists():
        raise NotADirectoryError(f"{folder} is a file; a ticket is a folder holding {TICKET_CONFIG_NAME}.")
    from .hub_download import download_ticket_files

    return download_ticket_files(str(path), **hub_kwargs)


def load_ticket(path: str | os.PathLike, **hub_kwargs: Any) -> LotteryTicket:
    """Read a ticket folder (or Hub repo) back, bit-exactly; clear `ValueError`s for damaged files."""
    config_file, masks_file = _resolve_files(path, **hub_kwargs)
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{config_file} is not valid JSON ({err}); the ticket is damaged.") from err
    if not isinstance(config, dict):
        raise ValueError(f"{config_file} must hold a JSON object; got {type(config).__name__}.")
    check_format_version(config.get("format_version"), str(config_file))
    expected_digest = config.get("masks_sha256")
    if expected_digest and sha256_file(masks_file) != expected_digest:
        raise ValueError(
            f"{masks_file} does not match the checksum recorded in {config_file.name}: the masks file is corrupted, "
            "truncated, or from another ticket."
        )
    try:
        tensors = load_file(str(masks_file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{masks_file} is corrupted or truncated and cannot be read as safetensors: {err}") from err
    for required in ("head_mask", "mlp_mask"):
        if required not in tensors:
            raise ValueError(f"{masks_file} has no `{required}` tensor; found {sorted(tensors)}.")
    special = {"head_mask", "mlp_mask", "head_importance", "mlp_importance"}
    weight_masks = {name: t for name, t in tensors.items() if name not in special}
    listed = config.get("weight_mask_names")
    if listed is not None and sorted(listed) != sorted(weight_masks):
        raise ValueError(
            f"{config_file.name} lists weight masks {sorted(listed)[:5]} but {masks_file.name} holds "
            f"{sorted(weight_masks)[:5]}: the two files are from different tickets."
        )
    metadata = metadata_from_config(config)
    return LotteryTicket(
        head_mask=tensors["head_mask"],
        mlp_mask=tensors["mlp_mask"],
        weight_masks=weight_masks,
        head_importance=tensors.get("head_importance"),
        mlp_importance=tensors.get("mlp_importance"),
        **metadata,
    )
